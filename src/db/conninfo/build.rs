//! From resolved keywords to what a connection needs: the side's TLS settings (with
//! libpq's defaults under `~/.postgresql/`) and the driver's `postgres::Config`.

use super::params::Params;
use super::{ConnInfoError, Env, CONNECT_TIMEOUT};
use crate::db::tls::{RootCert, SslMode, TlsSettings};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The side's TLS settings: sslmode (default prefer; verify-full when the roots are the
/// system's), the root certificate (`~/.postgresql/root.crt` when none is named and it
/// exists), the client certificate (`~/.postgresql/postgresql.crt` and `.key` likewise).
pub(super) fn tls_settings(
    side: &'static str,
    p: &Params,
    env: &dyn Env,
) -> Result<TlsSettings, ConnInfoError> {
    let home_file = |name: &str| {
        env.var("HOME")
            .map(|h| Path::new(&h).join(".postgresql").join(name))
            .filter(|f| f.is_file())
    };
    let root_cert = match p.get("sslrootcert").map(String::as_str) {
        Some("system") => Some(RootCert::System),
        Some(path) => Some(RootCert::File(PathBuf::from(path))),
        None => home_file("root.crt").map(RootCert::File),
    };
    let mode = match p.get("sslmode") {
        Some(m) => m
            .parse::<SslMode>()
            .map_err(|reason| ConnInfoError::BadSetting {
                side,
                key: "sslmode".into(),
                reason,
            })?,
        None if root_cert == Some(RootCert::System) => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    let fail = |reason: String| ConnInfoError::Tls { side, mode, reason };
    if root_cert == Some(RootCert::System)
        && mode != SslMode::VerifyFull
        && mode != SslMode::Disable
    {
        return Err(fail("sslrootcert=system needs sslmode=verify-full (libpq's rule): the OS trusts any public CA, so the host name must be checked".into()));
    }
    if root_cert.is_none() && matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
        return Err(fail("no root certificate to check the server's against: give sslrootcert=FILE (or sslrootcert=system for the OS's trusted roots), or put it in ~/.postgresql/root.crt".into()));
    }
    let client_cert = match (p.get("sslcert"), p.get("sslkey")) {
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        (Some(_), None) | (None, Some(_)) => {
            return Err(fail("sslcert and sslkey go together: give both".into()))
        }
        (None, None) => home_file("postgresql.crt").zip(home_file("postgresql.key")),
    };
    Ok(TlsSettings {
        mode,
        root_cert: root_cert.filter(|_| mode != SslMode::Disable),
        client_cert,
    })
}

/// The driver's config from resolved settings.
pub(super) fn driver_config(
    side: &'static str,
    p: &Params,
    tls: &TlsSettings,
) -> Result<postgres::Config, ConnInfoError> {
    let bad = |key: &str, reason: &str| ConnInfoError::BadSetting {
        side,
        key: key.to_string(),
        reason: reason.to_string(),
    };
    let mut config = postgres::Config::new();
    for host in p["host"].split(',') {
        if host.starts_with('/') {
            config.host_path(host);
        } else {
            config.host(if host.is_empty() { "localhost" } else { host });
        }
    }
    if let Some(addrs) = p.get("hostaddr") {
        for addr in addrs.split(',') {
            let ip = addr
                .parse()
                .map_err(|_| bad("hostaddr", "not an IP address"))?;
            config.hostaddr(ip);
        }
    }
    for port in p.get("port").map_or("5432", String::as_str).split(',') {
        let port = if port.is_empty() { "5432" } else { port };
        match port.parse::<u16>() {
            Ok(n) if n > 0 => config.port(n),
            _ => {
                return Err(ConnInfoError::BadPort {
                    side,
                    origin: "the connection settings",
                })
            }
        };
    }
    config.dbname(&p["dbname"]);
    config.user(&p["user"]);
    if let Some(pw) = p.get("password") {
        config.password(pw.as_bytes());
    }
    let timeout = match p.get("connect_timeout") {
        Some(t) => t
            .trim()
            .parse::<u64>()
            .map(|s| Duration::from_secs(s.max(2)))
            .map_err(|_| bad("connect_timeout", "not a number of seconds"))?,
        None => CONNECT_TIMEOUT,
    };
    config.connect_timeout(timeout);
    if let Some(options) = p.get("options") {
        config.options(options);
    }
    match p.get("keepalives").map(String::as_str) {
        None | Some("1") => config.keepalives(true),
        Some("0") => config.keepalives(false),
        Some(_) => return Err(bad("keepalives", "is 0 or 1")),
    };
    if let Some(attrs) = p.get("target_session_attrs") {
        let attrs = match attrs.as_str() {
            "any" => postgres::config::TargetSessionAttrs::Any,
            "read-write" => postgres::config::TargetSessionAttrs::ReadWrite,
            _ => return Err(bad("target_session_attrs", "is any or read-write")),
        };
        config.target_session_attrs(attrs);
    }
    if let Some(binding) = p.get("channel_binding") {
        let binding = match binding.as_str() {
            "disable" => postgres::config::ChannelBinding::Disable,
            "prefer" => postgres::config::ChannelBinding::Prefer,
            "require" => postgres::config::ChannelBinding::Require,
            _ => return Err(bad("channel_binding", "is disable, prefer or require")),
        };
        config.channel_binding(binding);
    }
    config.ssl_mode(first_attempt(tls.mode));
    Ok(config)
}

/// The driver's sslmode for the first connection attempt.
pub fn first_attempt(mode: SslMode) -> postgres::config::SslMode {
    use postgres::config::SslMode as Driver;
    match mode {
        SslMode::Disable | SslMode::Allow => Driver::Disable,
        SslMode::Prefer => Driver::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Driver::Require,
    }
}

/// The driver's sslmode for a second attempt after the first failed: allow retries with
/// TLS, prefer without; the other modes do not retry.
pub fn second_attempt(mode: SslMode) -> Option<postgres::config::SslMode> {
    use postgres::config::SslMode as Driver;
    match mode {
        SslMode::Allow => Some(Driver::Require),
        SslMode::Prefer => Some(Driver::Disable),
        _ => None,
    }
}

/// `user@host:port/dbname`, never the password.
pub(super) fn describe(config: &postgres::Config) -> String {
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
