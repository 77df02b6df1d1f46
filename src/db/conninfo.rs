//! Connection settings for one side: turns SOURCE/DEST (a bare database name or a
//! `postgres://` URL) plus `-h/-p/-U/--password` and the libpq variables PGHOST, PGPORT,
//! PGUSER, PGPASSWORD into a `postgres::Config` (rust-postgres reads no PG* variables itself).
//! Its `Display` is redacted: a password never leaves this module in text.

use std::fmt;
use std::time::Duration;

/// Why a SOURCE/DEST argument could not be turned into connection settings.
#[derive(Debug, thiserror::Error)]
pub enum ConnInfoError {
    /// The URL did not parse.
    #[error("{side}: {input_redacted:?} is not a valid connection URL ({reason}); use postgres://user[:password]@host[:port]/dbname")]
    BadUrl {
        /// Which argument.
        side: &'static str,
        /// The argument with any password replaced.
        input_redacted: String,
        /// Parser message.
        reason: String,
    },
    /// A port that is not a number.
    #[error("{side}: port {value:?} (from {origin}) is not a number between 1 and 65535")]
    BadPort {
        /// Which argument.
        side: &'static str,
        /// The bad value.
        value: String,
        /// Flag or variable it came from.
        origin: &'static str,
    },
    /// sslmode=require/verify-* asked for TLS, which this build does not speak.
    #[error("{side}: sslmode={mode} needs TLS, which this build of pgsync does not support; use sslmode=disable or prefer, or an SSH tunnel")]
    TlsUnsupported {
        /// Which argument.
        side: &'static str,
        /// The requested mode.
        mode: String,
    },
    /// No database name could be found.
    #[error("{side}: no database name given")]
    NoDatabase {
        /// Which argument.
        side: &'static str,
    },
}

/// Connection flags shared by both sides (`-h`, `-p`, `-U`…). `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct ConnDefaults {
    /// `-h/--hostname`.
    pub host: Option<String>,
    /// `-p/--port`.
    pub port: Option<u16>,
    /// USERNAME positional or `-U/--username`.
    pub user: Option<String>,
    /// `--password`.
    pub password: Option<String>,
}

/// Where to look up libpq-style variables; a seam so tests need not touch the process env.
pub trait Env {
    /// Value of a variable, if set and non-empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// Resolved settings for one side.
#[derive(Clone)]
pub struct ConnInfo {
    /// Ready-to-use driver config (password included; never printed).
    pub config: postgres::Config,
    /// `user@host:port/dbname`, safe to print and to use as identity.
    pub redacted: String,
}

impl fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnInfo({})", self.redacted)
    }
}

/// How long a connection attempt may take before it is reported as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves one SOURCE/DEST argument. Precedence: URL parts > flags > PG* variables > defaults.
pub fn resolve(
    side: &'static str,
    arg: &str,
    flags: &ConnDefaults,
    env: &dyn Env,
) -> Result<ConnInfo, ConnInfoError> {
    let is_url = arg.starts_with("postgres://") || arg.starts_with("postgresql://");
    let mut config = if is_url {
        arg.parse::<postgres::Config>()
            .map_err(|e| ConnInfoError::BadUrl {
                side,
                input_redacted: redact_url(arg),
                reason: e.to_string(),
            })?
    } else {
        let mut c = postgres::Config::new();
        if arg.is_empty() {
            return Err(ConnInfoError::NoDatabase { side });
        }
        c.dbname(arg);
        c
    };
    if let postgres::config::SslMode::Require = config.get_ssl_mode() {
        return Err(ConnInfoError::TlsUnsupported {
            side,
            mode: "require".into(),
        });
    }
    if config.get_dbname().is_none() {
        return Err(ConnInfoError::NoDatabase { side });
    }
    if config.get_hosts().is_empty() {
        let host = flags
            .host
            .clone()
            .or_else(|| env.var("PGHOST"))
            .unwrap_or_else(|| "localhost".into());
        if host.starts_with('/') {
            config.host_path(&host);
        } else {
            config.host(&host);
        }
    }
    if config.get_ports().is_empty() {
        let port = match (flags.port, env.var("PGPORT")) {
            (Some(p), _) => p,
            (None, Some(v)) => {
                v.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or(ConnInfoError::BadPort {
                        side,
                        value: v,
                        origin: "PGPORT",
                    })?
            }
            (None, None) => 5432,
        };
        config.port(port);
    }
    if config.get_user().is_none() {
        let user = flags
            .user
            .clone()
            .or_else(|| env.var("PGUSER"))
            .or_else(|| env.var("USER"))
            .unwrap_or_else(|| "postgres".into());
        config.user(&user);
    }
    if config.get_password().is_none() {
        if let Some(pw) = flags.password.clone().or_else(|| env.var("PGPASSWORD")) {
            config.password(pw);
        }
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    config.keepalives(true);
    let redacted = describe(&config);
    Ok(ConnInfo { config, redacted })
}

/// `user@host:port/dbname`, never the password.
fn describe(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "?".into(),
    };
    format!(
        "{}@{}:{}/{}",
        config.get_user().unwrap_or("?"),
        host,
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_dbname().unwrap_or("?")
    )
}

/// Replaces the password of a URL-looking string with `***` (best effort, for messages).
pub fn redact_url(input: &str) -> String {
    let Some(scheme_end) = input.find("://") else {
        return input.to_string();
    };
    let rest = &input[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &input[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => input.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<&'static str, &'static str>);
    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    #[test]
    fn bare_name_takes_flags_over_pg_variables() {
        let env = FakeEnv(HashMap::from([
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
        ]));
        let flags = ConnDefaults {
            host: Some("flaghost".into()),
            ..Default::default()
        };
        let c = resolve("source", "db1", &flags, &env).unwrap();
        assert_eq!(c.redacted, "envuser@flaghost:6000/db1");
    }

    #[test]
    fn url_parts_win_and_password_is_never_displayed() {
        let env = FakeEnv(HashMap::new());
        let flags = ConnDefaults {
            user: Some("flaguser".into()),
            ..Default::default()
        };
        let c = resolve("dest", "postgres://u:s3cret@h:7000/d", &flags, &env).unwrap();
        assert_eq!(c.redacted, "u@h:7000/d");
        assert_eq!(c.config.get_password(), Some(&b"s3cret"[..]));
        assert!(!format!("{c} {c:?}").contains("s3cret"));
    }

    #[test]
    fn bad_inputs_are_typed_errors_without_the_password() {
        let env = FakeEnv(HashMap::from([("PGPORT", "nope")]));
        assert!(matches!(
            resolve("source", "db", &ConnDefaults::default(), &env),
            Err(ConnInfoError::BadPort { .. })
        ));
        let err = resolve(
            "source",
            "postgres://u:pw@h:notaport/d",
            &ConnDefaults::default(),
            &FakeEnv(HashMap::new()),
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains(":pw@"), "{err}");
        assert!(matches!(
            resolve(
                "source",
                "postgres://h/d?sslmode=require",
                &ConnDefaults::default(),
                &FakeEnv(HashMap::new())
            ),
            Err(ConnInfoError::TlsUnsupported { .. })
        ));
    }

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(redact_url("postgres://u:p@h/d"), "postgres://u:***@h/d");
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
    }
}
