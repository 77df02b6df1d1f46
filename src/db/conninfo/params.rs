//! The two libpq spellings of connection settings, read into one list of keyword = value
//! pairs: URLs (`postgres://user:pw@host:port,host2/db?sslmode=require`, percent-encoded)
//! and conninfo strings (`host=db1 dbname='my db' user=reader`, with libpq's quoting: a
//! value is a run of non-blanks or a single-quoted string, `\` escapes the next character).
//! Errors name the keyword or the part that failed, never a value (it may be a password).

use std::collections::BTreeMap;

/// Keyword → value, as libpq names them (`host`, `port`, `dbname`, `user`, `password`,
/// `sslmode`…). A list of hosts or ports is kept comma-separated, as libpq does.
pub type Params = BTreeMap<String, String>;

/// Whether `arg` is a URL (`postgres://` or `postgresql://`).
pub fn is_url(arg: &str) -> bool {
    arg.starts_with("postgres://") || arg.starts_with("postgresql://")
}

/// Whether `arg` is a conninfo string: it has a `keyword=` (a bare database name has no `=`
/// — libpq's own rule).
pub fn is_conninfo(arg: &str) -> bool {
    !is_url(arg) && arg.contains('=')
}

/// Reads a conninfo string.
pub fn parse_conninfo(text: &str) -> Result<Params, String> {
    let mut params = Params::new();
    let mut chars = text.chars().peekable();
    // Errors count settings instead of quoting them: a mistyped string may have run into
    // a password.
    loop {
        let nth = params.len() + 1;
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(params);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!(
                "setting {nth} has no \"=\" (settings are keyword=value)"
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!(
                            "setting {nth}: a quoted value without its closing quote"
                        ))
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        params.insert(key, value);
    }
}

/// Reads a URL.
pub fn parse_url(url: &str) -> Result<Params, String> {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or("a connection URL starts with postgres:// or postgresql://")?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut params = Params::new();
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            params.insert("user".into(), decode(user, "the user name")?);
        }
        if let Some(password) = password {
            params.insert("password".into(), decode(password, "the password")?);
        }
    }
    if !hosts.is_empty() {
        let (mut host_list, mut port_list) = (Vec::new(), Vec::new());
        for spec in hosts.split(',') {
            let (host, port) = split_host_port(spec)?;
            host_list.push(decode(host, "a host")?);
            port_list.push(port.to_string());
        }
        if host_list.iter().any(|h| !h.is_empty()) {
            params.insert("host".into(), host_list.join(","));
        }
        if port_list.iter().any(|p| !p.is_empty()) {
            params.insert("port".into(), port_list.join(","));
        }
    }
    if !path.is_empty() {
        params.insert("dbname".into(), decode(path, "the database name")?);
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or("a URL parameter without \"=\"")?;
        let key = decode(key, "a parameter name")?;
        let value = decode(value, "a parameter's value")?;
        params.insert(key, value);
    }
    Ok(params)
}

/// `host[:port]` or `[v6 address][:port]`.
fn split_host_port(spec: &str) -> Result<(&str, &str), String> {
    if let Some(rest) = spec.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 host without its closing \"]\"")?;
        let port = match after {
            "" => "",
            p => p.strip_prefix(':').ok_or("text after an IPv6 host")?,
        };
        return Ok((host, port));
    }
    Ok(spec.split_once(':').unwrap_or((spec, "")))
}

/// Percent-decodes one URL part; `what` names it in errors (never its value).
fn decode(text: &str, what: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("a bad %-escape in {what}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{what} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn conninfo_strings_follow_libpq_quoting() {
        assert!(parse_conninfo(r"password='it''s'").is_err());
        assert_eq!(
            parse_conninfo(r"host=db1  dbname = 'my db'  user=re\ ader password='it\'s'").unwrap(),
            p(&[
                ("host", "db1"),
                ("dbname", "my db"),
                ("user", "re ader"),
                ("password", "it's")
            ])
        );
        assert_eq!(parse_conninfo("sslmode=").unwrap(), p(&[("sslmode", "")]));
        assert!(parse_conninfo("dbname='open").is_err());
        assert!(parse_conninfo("dbname").is_err());
    }

    #[test]
    fn urls_give_the_same_keywords() {
        assert_eq!(
            parse_url("postgres://u%40x:p%3Aw@h1:5433,[::1]:6000/d%20b?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem")
                .unwrap(),
            p(&[
                ("user", "u@x"),
                ("password", "p:w"),
                ("host", "h1,::1"),
                ("port", "5433,6000"),
                ("dbname", "d b"),
                ("sslmode", "verify-full"),
                ("sslrootcert", "/tmp/ca.pem"),
            ])
        );
        assert_eq!(
            parse_url("postgresql:///d?host=/run/pg").unwrap(),
            p(&[("dbname", "d"), ("host", "/run/pg")])
        );
        assert_eq!(parse_url("postgres://h").unwrap(), p(&[("host", "h")]));
        assert!(parse_url("postgres://h/d?x").is_err());
        assert!(parse_url("postgres://[::1/d").is_err());
    }

    #[test]
    fn errors_never_carry_a_value() {
        let err = parse_url("postgres://u:s3cr%zzet@h/d").unwrap_err();
        assert!(!err.contains("s3cr"), "{err}");
        assert!(err.contains("password"), "{err}");
        let err = parse_url("postgres://h/d?password=s3cr%zzet").unwrap_err();
        assert!(!err.contains("s3cr"), "{err}");
    }
}
