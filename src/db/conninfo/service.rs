//! Connection services, as libpq reads them: a `service=` keyword (or `PGSERVICE`, or
//! `--service`) names a `[section]` of `pg_service.conf` whose `keyword=value` lines fill the
//! settings a connection string left out. Files: `PGSERVICEFILE` or `~/.pg_service.conf`
//! first, then `pg_service.conf` in `PGSYSCONFDIR` (default `/etc/postgresql-common`, where
//! Debian's libpq looks).

use super::params::Params;
use std::path::{Path, PathBuf};

/// Default system configuration directory of Debian's libpq.
pub const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// The service files to search, in order.
pub fn files(
    service_file: Option<String>,
    home: Option<String>,
    sysconfdir: Option<String>,
) -> Vec<PathBuf> {
    let user = service_file
        .map(PathBuf::from)
        .or_else(|| home.map(|h| Path::new(&h).join(".pg_service.conf")));
    let system =
        Path::new(&sysconfdir.unwrap_or_else(|| DEFAULT_SYSCONFDIR.into())).join("pg_service.conf");
    user.into_iter().chain([system]).collect()
}

/// The settings of service `name`: from the first file that defines it. Errors name the
/// file and line, never a value.
pub fn lookup(name: &str, files: &[PathBuf]) -> Result<Params, String> {
    for path in files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        if let Some(params) =
            section(&text, name).map_err(|e| format!("{}: {e}", path.display()))?
        {
            return Ok(params);
        }
    }
    let searched: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "service {name:?} is not defined in {}",
        searched.join(" or ")
    ))
}

/// The `[name]` section of a service file, if there is one.
fn section(text: &str, name: &str) -> Result<Option<Params>, String> {
    let mut found: Option<Params> = None;
    let mut inside = false;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            if found.is_some() {
                break;
            }
            inside = header.strip_suffix(']').map(str::trim) == Some(name);
            if inside {
                found = Some(Params::new());
            }
            continue;
        }
        if !inside {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected keyword=value", number + 1))?;
        let key = key.trim();
        if key == "service" {
            return Err(format!(
                "line {}: a service cannot name another service",
                number + 1
            ));
        }
        if let Some(params) = found.as_mut() {
            params.insert(key.to_string(), value.trim().to_string());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_section_gives_its_settings() {
        let text = "# services\n[other]\nhost=x\n\n[shop]\nhost = db1.internal\ndbname=shop\nsslmode=verify-full\n[next]\nhost=y\n";
        let params = section(text, "shop").unwrap().unwrap();
        assert_eq!(params.get("host").map(String::as_str), Some("db1.internal"));
        assert_eq!(
            params.get("sslmode").map(String::as_str),
            Some("verify-full")
        );
        assert_eq!(params.len(), 3);
        assert_eq!(section(text, "missing").unwrap(), None);
        assert!(section("[a]\nnonsense\n", "a").is_err());
    }

    #[test]
    fn the_user_file_comes_before_the_system_one() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user.conf");
        std::fs::write(&user, "[s]\nhost=from-user\n").unwrap();
        let sys = dir.path().join("sys");
        std::fs::create_dir(&sys).unwrap();
        std::fs::write(
            sys.join("pg_service.conf"),
            "[s]\nhost=from-system\n[t]\nport=1\n",
        )
        .unwrap();
        let files = files(
            Some(user.display().to_string()),
            None,
            Some(sys.display().to_string()),
        );
        assert_eq!(lookup("s", &files).unwrap()["host"], "from-user");
        assert_eq!(lookup("t", &files).unwrap()["port"], "1");
        assert!(lookup("u", &files)
            .unwrap_err()
            .contains("is not defined in"));
    }
}
