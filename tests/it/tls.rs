//! Connecting the libpq way, against the real server (`ssl = on`, a certificate for
//! `localhost`; `scripts/test-server.sh` sets up the TLS-only role): TLS with verify-full
//! and verify-ca, a wrong root or host name refused with exit 2 naming the side, a TLS-only
//! role refused without TLS, ~/.pgpass (and its permission check), a service file, a
//! conninfo string, a client certificate, and the whole sync + verify path over TLS.

use crate::harness::{assert_tables_equal, fixtures, server, Pgsync, TestDb};

/// The server's certificate, which is self-signed: the root that verifies it
/// (`PGSYNC_TEST_SSLROOTCERT`, else the file the local server reads it from).
fn server_root() -> String {
    if let Ok(path) = std::env::var("PGSYNC_TEST_SSLROOTCERT") {
        return path;
    }
    let mut admin = server::admin();
    let on: String = admin.query_one("SHOW ssl", &[]).unwrap().get(0);
    assert_eq!(
        on, "on",
        "the test server must have ssl = on (scripts/test-server.sh checks it)"
    );
    let file: String = admin.query_one("SHOW ssl_cert_file", &[]).unwrap().get(0);
    assert!(
        std::fs::metadata(&file).is_ok(),
        "cannot read the server's certificate {file}; set PGSYNC_TEST_SSLROOTCERT"
    );
    file
}

/// `db`'s URL with host `host` and extra query settings.
fn url(db: &TestDb, host: &str, query: &str) -> String {
    url_with(&db.url(), host, query)
}

/// `base` with host `host` and extra query settings.
fn url_with(base: &str, host: &str, query: &str) -> String {
    let base = base.replace("127.0.0.1", host);
    format!(
        "{base}{}{query}",
        if base.contains('?') { "&" } else { "?" }
    )
}

/// A root that did not sign the server's certificate: the OS's public CA bundle.
const WRONG_ROOT: &str = "/etc/ssl/certs/ca-certificates.crt";

#[test]
fn a_sync_and_its_verify_run_over_verified_tls_and_status_says_so() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 30_000, 50);
    let root = server_root();
    let source = url(
        &src,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={root}"),
    );
    let dest = format!(
        "host=127.0.0.1 dbname={} user=postgres sslmode=verify-ca sslrootcert='{root}'",
        dst.name
    );
    let job = Pgsync::new(&source, &dest, "transactions").with(&["-c", "5000"]);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    let status = job.status();
    for side in ["source", "destination"] {
        let encryption = status["connections"][side]["encryption"]
            .as_str()
            .unwrap_or("");
        assert!(encryption.starts_with("TLSv1."), "{side}: {status}");
    }
    assert_eq!(status["connections"]["source"]["sslmode"], "verify-full");
    assert_eq!(status["connections"]["destination"]["sslmode"], "verify-ca");
    job.run_ok("verify", &[]);
    // The server agrees: pgsync's sessions were encrypted.
    let mut plain =
        Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["--sslmode", "disable"]);
    plain.options.retain(|o| o != "--quiet");
    fixtures::churn(&src, 100, 3);
    plain.run_ok("single", &[]);
    assert_eq!(
        plain.status()["connections"]["source"]["encryption"],
        "none"
    );
}

#[test]
fn a_certificate_that_does_not_verify_is_exit_2_naming_the_side_and_nothing_is_written() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 1_000, 10);
    let root = server_root();
    let cases = [
        // Signed by another root.
        (
            url(
                &src,
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={WRONG_ROOT}"),
            ),
            "source",
            "UnknownIssuer",
        ),
        // The right root, but the certificate names localhost, not 127.0.0.1.
        (
            url(
                &src,
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={root}"),
            ),
            "source",
            "not valid for name",
        ),
    ];
    for (source, side, reason) in cases {
        let job = Pgsync::new(&source, &dst.url(), "transactions");
        let out = job.assert_exit("single", &[], 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("pgsync: {side}: connecting to"))
                && err.contains("TLS:")
                && err.contains(reason),
            "{err}"
        );
        assert!(err.contains("sslrootcert"), "the hint names the fix: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // Per side: the destination's own mode and root.
    let job = Pgsync::new(&src.url(), &url(&dst, "localhost", ""), "transactions").with(&[
        "--dest-sslmode",
        "verify-full",
        "--dest-sslrootcert",
        WRONG_ROOT,
    ]);
    let err = String::from_utf8_lossy(&job.assert_exit("single", &[], 2).stderr).to_string();
    assert!(
        err.contains("pgsync: destination: connecting to") && err.contains("UnknownIssuer"),
        "{err}"
    );
    let tables =
        dst.scalar_i64("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace");
    assert_eq!(tables, 0, "the destination was written");
}

/// Creates the TLS-only role (pg_hba: hostssl + scram only; scripts/test-server.sh), with
/// SELECT on the source's table.
fn tls_role(src: &TestDb) -> &'static str {
    let role = "pgsync_tls_role";
    let mut admin = server::admin();
    let _ = admin.batch_execute(&format!("CREATE ROLE {role} LOGIN PASSWORD 'tls-Pa55'"));
    src.exec(&format!("GRANT SELECT ON transactions TO {role}"));
    role
}

#[test]
fn a_tls_only_role_gets_in_with_tls_and_its_password_from_pgpass() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 2_000, 10);
    let role = tls_role(&src);
    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:*:{}:{role}:tls-Pa55\n", src.name),
    )
    .unwrap();
    let chmod = |mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    chmod(0o600);
    let source = server::url_as(role, &src.name);
    let mut job = Pgsync::new(&source, &dst.url(), "transactions");
    job.env
        .push(("HOME".into(), home.path().display().to_string()));
    job.options.retain(|o| o != "--quiet");
    let mode = |m: &'static str| ["--source-sslmode", m];
    // Without TLS the server refuses the role: exit 2 and the hint says why.
    let err =
        String::from_utf8_lossy(&job.assert_exit("single", &mode("disable"), 2).stderr).to_string();
    assert!(
        err.contains("pgsync: source: connecting to") && err.contains("sslmode=require"),
        "{err}"
    );
    // A password file others can read is ignored with a warning (libpq's rule).
    chmod(0o644);
    let err =
        String::from_utf8_lossy(&job.assert_exit("single", &mode("require"), 2).stderr).to_string();
    assert!(
        err.contains("is ignored: group or others can read it"),
        "{err}"
    );
    assert!(err.contains("password"), "{err}");
    chmod(0o600);
    // prefer (the default) encrypts, and the password comes from .pgpass.
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    let status = job.status();
    let encryption = status["connections"]["source"]["encryption"]
        .as_str()
        .unwrap_or("");
    assert!(encryption.starts_with("TLS"), "{status}");
    assert_eq!(status["connections"]["source"]["sslmode"], "prefer");
    assert!(!status.to_string().contains("tls-Pa55"));
    // allow: plain first; refused by pg_hba, then TLS.
    fixtures::churn(&src, 50, 5);
    job.run_ok("single", &mode("allow"));
    assert_tables_equal(&src, &dst, "transactions", "id");
    let status = job.status();
    assert_eq!(status["connections"]["source"]["sslmode"], "allow");
    assert!(
        status["connections"]["source"]["encryption"]
            .as_str()
            .unwrap_or("")
            .starts_with("TLS"),
        "{status}"
    );
}

#[test]
fn a_service_file_names_the_connection() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 3_000, 10);
    let root = server_root();
    let dir = tempfile::tempdir().unwrap();
    let services = dir.path().join("services.conf");
    std::fs::write(
        &services,
        format!(
            "[pgsync_src]\nhost=localhost\nport=5432\ndbname={}\nuser=postgres\nsslmode=verify-full\nsslrootcert={root}\n",
            src.name
        ),
    )
    .unwrap();
    let mut job = Pgsync::new("service=pgsync_src", &dst.url(), "transactions");
    job.env
        .push(("PGSERVICEFILE".into(), services.display().to_string()));
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    assert_eq!(
        job.status()["connections"]["source"]["sslmode"],
        "verify-full"
    );
    // A service that is not there is exit 2 naming the files searched.
    let mut missing = Pgsync::new("service=nope", &dst.url(), "transactions");
    missing
        .env
        .push(("PGSERVICEFILE".into(), services.display().to_string()));
    let err = String::from_utf8_lossy(&missing.assert_exit("single", &[], 2).stderr).to_string();
    assert!(
        err.contains("service \"nope\" is not defined in") && err.contains("services.conf"),
        "{err}"
    );
}

#[test]
fn a_client_certificate_logs_in_a_role_that_only_takes_certificates() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 2_000, 10);
    let role = "pgsync_cert_role";
    let mut admin = server::admin();
    let _ = admin.batch_execute(&format!("CREATE ROLE {role} LOGIN"));
    src.exec(&format!("GRANT SELECT ON transactions TO {role}"));
    // The test CA and the role's certificate: scripts/test-server.sh makes them next to
    // pg_hba.conf and points ssl_ca_file at the CA.
    let ca: String = admin.query_one("SHOW ssl_ca_file", &[]).unwrap().get(0);
    assert!(
        ca.ends_with("pgsync-test-ca/ca.pem"),
        "ssl_ca_file is {ca:?}: run scripts/test-server.sh (the README's test command does)"
    );
    let dir = std::path::Path::new(&ca).parent().unwrap();
    let (cert, key) = (dir.join("client.pem"), dir.join("client.key"));
    let source = url_with(
        &server::url_as(role, &src.name),
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", server_root()),
    );
    let with_cert = Pgsync::new(&source, &dst.url(), "transactions").with(&[
        "--sslcert",
        &cert.display().to_string(),
        "--sslkey",
        &key.display().to_string(),
    ]);
    with_cert.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    let without = Pgsync::new(&source, &dst.url(), "transactions");
    let err = String::from_utf8_lossy(&without.assert_exit("single", &[], 2).stderr).to_string();
    assert!(
        err.contains("pgsync: source: connecting to pgsync_cert_role@localhost")
            && err.contains("certificate"),
        "{err}"
    );
}
