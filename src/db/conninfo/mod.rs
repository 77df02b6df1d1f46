//! Connection settings for one side, resolved the way libpq resolves them. SOURCE/DEST is a
//! bare database name, a `postgres://` URL or a conninfo string (`params.rs`); what it
//! leaves out comes from the flags (`-h -p -U --password --sslmode …`), then a connection
//! service (`service.rs`), then the PG* variables (PGHOST, PGPORT, PGUSER, PGPASSWORD,
//! PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY, PGSERVICE, PGPASSFILE, PGCONNECT_TIMEOUT),
//! then the password file (`pgpass.rs`) for the password, then the defaults. The result is a
//! `postgres::Config` plus TLS settings (`db/tls.rs`); rust-postgres reads none of this
//! itself. Its `Display` is redacted, and no error here carries a setting's value: a
//! password never leaves this module in text.

mod build;
pub mod params;
mod pgpass;
mod service;

use crate::db::tls::{SslMode, TlsSettings};
use build::{describe, driver_config, tls_settings};
pub use build::{first_attempt, second_attempt};
use params::Params;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Why a SOURCE/DEST argument could not be turned into connection settings. No variant
/// holds the input or a setting's value.
#[derive(Debug, thiserror::Error)]
pub enum ConnInfoError {
    /// The URL or conninfo string did not parse.
    #[error("{side}: the {form} does not parse: {reason}")]
    BadSyntax {
        /// Which argument.
        side: &'static str,
        /// "connection URL" or "connection string".
        form: &'static str,
        /// What is wrong, naming the part, not its value.
        reason: String,
    },
    /// A setting that is unknown or has an unusable value.
    #[error("{side}: connection setting {key}: {reason}")]
    BadSetting {
        /// Which argument.
        side: &'static str,
        /// The keyword (libpq's name).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A port that is not a number (its text is not repeated: it may hold anything).
    #[error("{side}: the port (from {origin}) is not a number between 1 and 65535")]
    BadPort {
        /// Which argument.
        side: &'static str,
        /// Flag or variable it came from.
        origin: &'static str,
    },
    /// The connection service could not be read.
    #[error("{side}: {reason}")]
    Service {
        /// Which argument.
        side: &'static str,
        /// What is wrong (file, line, service name).
        reason: String,
    },
    /// The TLS settings cannot be used (a missing root certificate…).
    #[error("{side}: TLS (sslmode={mode}): {reason}")]
    Tls {
        /// Which argument.
        side: &'static str,
        /// The mode asked for.
        mode: SslMode,
        /// What is wrong.
        reason: String,
    },
    /// No database name could be found.
    #[error("{side}: no database name given")]
    NoDatabase {
        /// Which argument.
        side: &'static str,
    },
}

/// Connection flags for one side (`-h`, `-p`, `-U`, `--sslmode`…). `None` means "not given".
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
    /// `--service`.
    pub service: Option<String>,
    /// `--sslmode` (or the side's own).
    pub sslmode: Option<SslMode>,
    /// `--sslrootcert` (or the side's own).
    pub sslrootcert: Option<String>,
    /// `--sslcert`.
    pub sslcert: Option<String>,
    /// `--sslkey`.
    pub sslkey: Option<String>,
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
    /// Ready-to-use driver config (password included; never printed). Its `ssl_mode` is
    /// the first one to try (`db/pool.rs` tries the second for allow and prefer).
    pub config: postgres::Config,
    /// `user@host:port/dbname`, safe to print and to use as identity.
    pub redacted: String,
    /// The side's TLS settings.
    pub tls: TlsSettings,
    /// The TLS connector for them.
    pub connector: MakeRustlsConnect,
    /// Things worth a warning found while resolving (a password file others can read…).
    pub warnings: Vec<String>,
}

impl fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnInfo({}, sslmode={})", self.redacted, self.tls.mode)
    }
}

/// How long a connection attempt may take before it is reported as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Keywords pgsync understands (libpq's names).
const KNOWN: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "connect_timeout",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "service",
    "application_name",
    "options",
    "keepalives",
    "target_session_attrs",
    "channel_binding",
];

/// Resolves one SOURCE/DEST argument. Precedence: the argument's own settings > flags >
/// service > PG* variables > password file (password only) > defaults.
pub fn resolve(
    side: &'static str,
    arg: &str,
    flags: &ConnDefaults,
    env: &dyn Env,
) -> Result<ConnInfo, ConnInfoError> {
    let mut p = if params::is_url(arg) {
        params::parse_url(arg).map_err(|reason| ConnInfoError::BadSyntax {
            side,
            form: "connection URL",
            reason,
        })?
    } else if params::is_conninfo(arg) {
        params::parse_conninfo(arg).map_err(|reason| ConnInfoError::BadSyntax {
            side,
            form: "connection string",
            reason,
        })?
    } else if arg.is_empty() {
        return Err(ConnInfoError::NoDatabase { side });
    } else {
        Params::from([("dbname".to_string(), arg.to_string())])
    };
    let from_flags: [(&str, Option<String>); 8] = [
        ("host", flags.host.clone()),
        ("port", flags.port.map(|p| p.to_string())),
        ("user", flags.user.clone()),
        ("password", flags.password.clone()),
        ("sslmode", flags.sslmode.map(|m| m.name().to_string())),
        ("sslrootcert", flags.sslrootcert.clone()),
        ("sslcert", flags.sslcert.clone()),
        ("sslkey", flags.sslkey.clone()),
    ];
    fill(&mut p, from_flags.map(|(k, v)| (k.to_string(), v)));
    let service = p
        .remove("service")
        .or_else(|| flags.service.clone())
        .or_else(|| env.var("PGSERVICE"));
    if let Some(name) = service {
        let files = service::files(
            env.var("PGSERVICEFILE"),
            env.var("HOME"),
            env.var("PGSYSCONFDIR"),
        );
        let defined = service::lookup(&name, &files)
            .map_err(|reason| ConnInfoError::Service { side, reason })?;
        if let Some(unknown) = defined.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ConnInfoError::Service {
                side,
                reason: format!("service {name:?}: {}", unknown_setting(side, unknown)),
            });
        }
        fill(&mut p, defined.into_iter().map(|(k, v)| (k, Some(v))));
    }
    let from_env = [
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("user", "PGUSER"),
        ("password", "PGPASSWORD"),
        ("sslmode", "PGSSLMODE"),
        ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"),
        ("passfile", "PGPASSFILE"),
        ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ];
    for (key, var) in from_env {
        if !p.contains_key(key) {
            if let Some(value) = env.var(var) {
                if key == "port" && value.parse::<u16>().map_or(true, |n| n == 0) {
                    return Err(ConnInfoError::BadPort {
                        side,
                        origin: "PGPORT",
                    });
                }
                p.insert(key.to_string(), value);
            }
        }
    }
    if let Some(unknown) = p.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(unknown_setting(side, unknown));
    }
    p.entry("host".into()).or_insert_with(|| "localhost".into());
    let user = env.var("USER").unwrap_or_else(|| "postgres".into());
    p.entry("user".into()).or_insert(user);
    if !p.contains_key("dbname") || p["dbname"].is_empty() {
        return Err(ConnInfoError::NoDatabase { side });
    }
    let mut warnings = Vec::new();
    if !p.contains_key("password") {
        let file = p
            .get("passfile")
            .map(PathBuf::from)
            .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".pgpass")));
        if let Some(file) = file {
            let first = |key: &str, default: &str| {
                p.get(key)
                    .and_then(|v| v.split(',').next().map(str::to_string))
                    .unwrap_or_else(|| default.to_string())
            };
            match pgpass::lookup(&file, &first("host", "localhost"), &first("port", "5432"), &p["dbname"], &p["user"]) {
                pgpass::Found::Password(pw) => {
                    p.insert("password".into(), pw);
                }
                pgpass::Found::TooOpen => warnings.push(format!(
                    "{side}: password file {} is ignored: group or others can read it (chmod 0600 it)",
                    file.display()
                )),
                pgpass::Found::Nothing => {}
            }
        }
    }
    let tls = tls_settings(side, &p, env)?;
    let connector = tls.connector().map_err(|reason| ConnInfoError::Tls {
        side,
        mode: tls.mode,
        reason,
    })?;
    let config = driver_config(side, &p, &tls)?;
    let redacted = describe(&config);
    Ok(ConnInfo {
        config,
        redacted,
        tls,
        connector,
        warnings,
    })
}

/// An unknown keyword. It is named only when it is one letter or two away from a known one
/// (a typo): anything else might be a password that a mistyped string ran into.
fn unknown_setting(side: &'static str, key: &str) -> ConnInfoError {
    let close = KNOWN.iter().find(|k| edit_distance(k, key) <= 2);
    ConnInfoError::BadSetting {
        side,
        key: close.map_or("?".into(), |_| format!("{key:?}")),
        reason: match close {
            Some(k) => format!("unknown; did you mean {k}?"),
            None => format!(
                "an unknown keyword; pgsync takes libpq's: {}",
                KNOWN.join(", ")
            ),
        },
    }
}

/// Levenshtein distance (short strings only).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Sets the keys `p` does not have yet.
fn fill(p: &mut Params, values: impl IntoIterator<Item = (String, Option<String>)>) {
    for (key, value) in values {
        if let Some(value) = value {
            p.entry(key).or_insert(value);
        }
    }
}

#[cfg(test)]
mod tests;
