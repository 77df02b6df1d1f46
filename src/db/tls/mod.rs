//! TLS for both sides, with libpq's `sslmode` semantics, on rustls (no system OpenSSL; the
//! `system` root store is read from the OS by rustls-native-certs).
//!
//! | sslmode | encrypts | verifies the certificate |
//! |---|---|---|
//! | disable | never | — |
//! | allow | when the server insists (plain first, then TLS) | no |
//! | prefer (default) | when the server can (TLS first, then plain) | no |
//! | require | always | no — unless a root certificate is given or `~/.postgresql/root.crt` exists: then as verify-ca (libpq's rule) |
//! | verify-ca | always | chain to `sslrootcert` |
//! | verify-full | always | chain, and the host name |
//!
//! A certificate that does not verify fails the connection (a typed `DbErrorKind::Tls`
//! error naming the side); it never falls back to a weaker mode.

mod verify;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;
use verify::{ChainOnly, EncryptOnly};

/// libpq's `sslmode`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum SslMode {
    /// Never encrypt.
    Disable,
    /// Plain first; TLS if the server refuses plain.
    Allow,
    /// TLS if the server offers it (the default).
    Prefer,
    /// Always TLS; no certificate check unless a root certificate is there.
    Require,
    /// Always TLS; the certificate chains to the root certificate.
    VerifyCa,
    /// Always TLS; the certificate chains to the root and names the host.
    VerifyFull,
}

impl SslMode {
    /// Its libpq spelling.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The connection must be encrypted.
    pub fn requires_tls(self) -> bool {
        self >= SslMode::Require
    }
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            // The value is not repeated: a mistyped connection string may have run into it.
            _ => {
                return Err(
                    "not one of disable, allow, prefer, require, verify-ca, verify-full".into(),
                )
            }
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of one or more certificates.
    File(PathBuf),
    /// The operating system's trust store (`sslrootcert=system`).
    System,
}

/// One side's TLS settings, resolved (defaults under `~/.postgresql/` applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The mode.
    pub mode: SslMode,
    /// Trusted roots; `None`: no verification possible (disable … require).
    pub root_cert: Option<RootCert>,
    /// Client certificate and key (PEM), when the server asks for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// What verifying the server's certificate means for these settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Encrypt only.
    None,
    /// The chain, not the host name.
    Chain,
    /// The chain and the host name.
    Full,
}

impl TlsSettings {
    /// How the server's certificate is checked.
    pub fn verification(&self) -> Verification {
        match (self.mode, &self.root_cert) {
            (SslMode::VerifyFull, _) => Verification::Full,
            (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => Verification::Chain,
            _ => Verification::None,
        }
    }

    /// A connector for these settings. Errors name the file and what is wrong with it.
    pub fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self.verification() {
            Verification::None => Arc::new(EncryptOnly(provider.clone())),
            level => {
                let roots = self.roots()?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| format!("the root certificates cannot be used: {e}"))?;
                if level == Verification::Full {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up failed: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let certs = read_certs(cert, "sslcert")?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("sslkey {}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("sslcert/sslkey do not make a client certificate: {e}"))?
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    fn roots(&self) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::empty();
        match &self.root_cert {
            None => return Err("no root certificate to verify the server with".into()),
            Some(RootCert::System) => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(
                        "sslrootcert=system: the operating system has no trusted root certificates"
                            .into(),
                    );
                }
            }
            Some(RootCert::File(path)) => {
                let (added, _) = roots.add_parsable_certificates(read_certs(path, "sslrootcert")?);
                if added == 0 {
                    return Err(format!(
                        "sslrootcert {}: no usable certificate in it",
                        path.display()
                    ));
                }
            }
        }
        Ok(roots)
    }
}

fn read_certs(path: &std::path::Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

/// The TLS failure inside a driver error, if the TLS handshake is what failed: rustls's
/// reason (a certificate that does not verify…), or the server declining TLS. A connection
/// that breaks later is not a TLS failure (it is lost, and retried), whatever layer noticed.
pub fn tls_failure(err: &postgres::Error) -> Option<String> {
    if !err
        .to_string()
        .starts_with("error performing TLS handshake")
    {
        return None;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(tls) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls.to_string());
        }
        if e.to_string().contains("server does not support TLS") {
            return Some("the server does not accept TLS connections".into());
        }
        source = e.source();
    }
    Some("the handshake failed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_order_and_print_as_libpq_spells_them() {
        for name in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            assert_eq!(name.parse::<SslMode>().unwrap().name(), name);
        }
        assert!("verify_full".parse::<SslMode>().is_err());
        assert!(SslMode::Require.requires_tls() && !SslMode::Prefer.requires_tls());
    }

    #[test]
    fn require_verifies_the_chain_only_when_a_root_is_given() {
        let settings = |mode, root: Option<RootCert>| TlsSettings {
            mode,
            root_cert: root,
            client_cert: None,
        };
        let file = || Some(RootCert::File("/x.pem".into()));
        assert_eq!(
            settings(SslMode::Require, None).verification(),
            Verification::None
        );
        assert_eq!(
            settings(SslMode::Require, file()).verification(),
            Verification::Chain
        );
        assert_eq!(
            settings(SslMode::Prefer, file()).verification(),
            Verification::None
        );
        assert_eq!(
            settings(SslMode::VerifyCa, file()).verification(),
            Verification::Chain
        );
        assert_eq!(
            settings(SslMode::VerifyFull, file()).verification(),
            Verification::Full
        );
    }

    /// A self-signed certificate and its key, made by the openssl command-line tool.
    fn self_signed(dir: &std::path::Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args(["-subj", "/CN=pgsync-test", "-days", "1"])
            .output()
            .expect("the openssl command-line tool makes the test certificate");
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        (cert, key)
    }

    #[test]
    fn a_client_certificate_loads_and_a_mismatched_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path());
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let (_, other_key) = self_signed(&other);
        let settings = |key: PathBuf| TlsSettings {
            mode: SslMode::VerifyFull,
            root_cert: Some(RootCert::File(cert.clone())),
            client_cert: Some((cert.clone(), key)),
        };
        assert!(settings(key).connector().is_ok());
        let err = settings(other_key).connector().err().unwrap();
        assert!(err.contains("do not make a client certificate"), "{err}");
        let err = settings(dir.path().join("missing.key"))
            .connector()
            .err()
            .unwrap();
        assert!(err.contains("sslkey"), "{err}");
    }

    #[test]
    fn a_missing_or_empty_root_file_is_a_clear_error() {
        let missing = TlsSettings {
            mode: SslMode::VerifyFull,
            root_cert: Some(RootCert::File("/nonexistent/root.crt".into())),
            client_cert: None,
        };
        let err = missing.connector().err().unwrap();
        assert!(err.contains("sslrootcert /nonexistent/root.crt"), "{err}");
        let empty = tempfile::NamedTempFile::new().unwrap();
        let err = TlsSettings {
            root_cert: Some(RootCert::File(empty.path().into())),
            ..missing
        }
        .connector()
        .err()
        .unwrap();
        assert!(err.contains("no PEM certificate"), "{err}");
    }
}
