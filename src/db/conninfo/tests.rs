//! Resolution of SOURCE/DEST: forms, precedence, TLS defaults, secrets kept out of errors.

use super::*;
use std::collections::HashMap;

struct FakeEnv(HashMap<&'static str, String>);
impl Env for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

fn env(pairs: &[(&'static str, &str)]) -> FakeEnv {
    FakeEnv(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
}

fn none() -> FakeEnv {
    env(&[])
}

#[test]
fn bare_name_takes_flags_over_pg_variables() {
    let env = env(&[
        ("PGHOST", "envhost"),
        ("PGPORT", "6000"),
        ("PGUSER", "envuser"),
    ]);
    let flags = ConnDefaults {
        host: Some("flaghost".into()),
        ..Default::default()
    };
    let c = resolve("source", "db1", &flags, &env).unwrap();
    assert_eq!(c.redacted, "envuser@flaghost:6000/db1");
    assert_eq!(c.tls.mode, SslMode::Prefer);
}

#[test]
fn url_parts_win_and_password_is_never_displayed() {
    let flags = ConnDefaults {
        user: Some("flaguser".into()),
        ..Default::default()
    };
    let c = resolve("dest", "postgres://u:s3cret@h:7000/d", &flags, &none()).unwrap();
    assert_eq!(c.redacted, "u@h:7000/d");
    assert_eq!(c.config.get_password(), Some(&b"s3cret"[..]));
    assert!(!format!("{c} {c:?}").contains("s3cret"));
}

#[test]
fn a_conninfo_string_is_a_connection_not_a_database_name() {
    let c = resolve(
        "source",
        "host=db1 port=6432 dbname='my shop' user=reader sslmode=require",
        &ConnDefaults::default(),
        &none(),
    )
    .unwrap();
    assert_eq!(c.redacted, "reader@db1:6432/my shop");
    assert_eq!(c.tls.mode, SslMode::Require);
}

#[test]
fn sslmode_comes_from_the_argument_then_flags_then_pgsslmode() {
    let env = env(&[("PGSSLMODE", "disable")]);
    let flags = ConnDefaults {
        sslmode: Some(SslMode::Allow),
        ..Default::default()
    };
    let mode =
        |arg: &str, flags: &ConnDefaults| resolve("source", arg, flags, &env).unwrap().tls.mode;
    assert_eq!(
        mode("postgres://h/d?sslmode=require", &flags),
        SslMode::Require
    );
    assert_eq!(mode("d", &flags), SslMode::Allow);
    assert_eq!(mode("d", &ConnDefaults::default()), SslMode::Disable);
}

#[test]
fn verify_modes_need_a_root_certificate_and_system_needs_verify_full() {
    let err = resolve(
        "source",
        "postgres://h/d?sslmode=verify-ca",
        &ConnDefaults::default(),
        &none(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("sslrootcert"), "{err}");
    let err = resolve(
        "source",
        "postgres://h/d?sslmode=require&sslrootcert=system",
        &ConnDefaults::default(),
        &none(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("verify-full"), "{err}");
    let c = resolve(
        "source",
        "dbname=d sslrootcert=system",
        &ConnDefaults::default(),
        &none(),
    );
    assert_eq!(c.map(|c| c.tls.mode).ok(), Some(SslMode::VerifyFull));
}

#[test]
fn the_password_file_and_the_service_fill_what_is_missing() {
    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    std::fs::write(&pgpass, "db1:5432:shop:reader:from-pgpass\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(
        home.path().join(".pg_service.conf"),
        "[shop]\nhost=db1\ndbname=shop\nuser=reader\nsslmode=require\n",
    )
    .unwrap();
    let home_dir = home.path().display().to_string();
    let env = env(&[("HOME", &home_dir), ("PGSYSCONFDIR", "/nonexistent")]);
    let c = resolve("source", "service=shop", &ConnDefaults::default(), &env).unwrap();
    assert_eq!(c.redacted, "reader@db1:5432/shop");
    assert_eq!(c.config.get_password(), Some(&b"from-pgpass"[..]));
    assert_eq!(c.tls.mode, SslMode::Require);
    // The argument's own settings beat the service's.
    let c = resolve(
        "source",
        "service=shop sslmode=disable dbname=other",
        &ConnDefaults::default(),
        &env,
    )
    .unwrap();
    assert_eq!(
        (c.tls.mode, c.config.get_password()),
        (SslMode::Disable, None)
    );
    let err = resolve("source", "service=nope", &ConnDefaults::default(), &env).unwrap_err();
    assert!(
        err.to_string().contains("service \"nope\" is not defined"),
        "{err}"
    );
}

#[test]
fn no_error_carries_the_password_whatever_the_form() {
    let secret = "s3cret-VALUE";
    let inputs = [
        format!("postgres://u:{secret}@h:notaport/d"),
        format!("postgres://u:{secret}@h/d?connect_timeout=x"),
        format!("postgres://h/d?password={secret}&sslmode=nope"),
        format!("postgres://h/d?password={secret}&bogus=1"),
        format!("host=h password={secret} port=x dbname=d"),
        format!("host=h password='{secret}"),
        format!("password={secret} dbname=d sslmode=verify-full"),
    ];
    for input in inputs {
        let err = resolve("source", &input, &ConnDefaults::default(), &none()).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(secret), "{input}: {err}");
    }
}

#[test]
fn unknown_settings_and_bad_values_are_typed_errors() {
    let bad = |arg: &str| resolve("source", arg, &ConnDefaults::default(), &none()).unwrap_err();
    assert!(matches!(
        bad("postgres://h/d?bogus=1"),
        ConnInfoError::BadSetting { .. }
    ));
    let typo = bad("host=h dbname=d sslmod=require").to_string();
    assert!(
        typo.contains("\"sslmod\"") && typo.contains("did you mean sslmode?"),
        "{typo}"
    );
    let unknown = bad("host=h dbname=d hunter2hunter=1").to_string();
    assert!(!unknown.contains("hunter2"), "{unknown}");
    assert!(matches!(
        bad("postgres://h:0/d"),
        ConnInfoError::BadPort { .. }
    ));
    assert!(matches!(bad("host=h"), ConnInfoError::NoDatabase { .. }));
    assert!(matches!(bad("dbname='x"), ConnInfoError::BadSyntax { .. }));
    assert!(matches!(
        resolve(
            "source",
            "d",
            &ConnDefaults::default(),
            &env(&[("PGPORT", "nope")])
        ),
        Err(ConnInfoError::BadPort { .. })
    ));
}
