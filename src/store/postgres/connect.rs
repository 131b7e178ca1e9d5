//! From a `store.url` to what connections need: the driver's config and, when the URL asks for
//! TLS, a rustls connector.
//!
//! The URL takes libpq's TLS options: `sslmode=disable|prefer|require|verify-ca|verify-full` and
//! `sslrootcert=PATH` (PEM). Every TLS connection verifies the server's certificate and name
//! against `sslrootcert` when given, else the system's CAs: `require` and `verify-ca` are as strict
//! as `verify-full` (stricter than libpq, which skips checks for those). Without `sslmode`, or with
//! `prefer` or `disable`, connections are plain, as before. Errors never repeat the URL: it may hold
//! a password.

use super::StoreError;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Server-side limits for every connection, unless the URL sets its own: a statement waiting on a
/// lock (or running away) fails, so ingress answers 503 and the stages retry, rather than hanging.
const SESSION_LIMITS: [(&str, &str); 2] = [("lock_timeout", "5s"), ("statement_timeout", "30s")];

/// How to reach the database.
pub(super) struct Target {
    pub(crate) config: tokio_postgres::Config,
    /// `Some` when the URL requires TLS.
    pub(crate) tls: Option<MakeRustlsConnect>,
}

/// Parses `url` (`postgres://` or `postgresql://`).
pub(super) fn target(url: &str) -> Result<Target, StoreError> {
    let bad = |why: String| StoreError::Unavailable(format!("bad postgres url: {why}"));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let (mut tls, mut root_cert) = (false, None);
    // Other parameters pass on exactly as written: re-encoding them would turn `%20` into `+`,
    // which the driver does not decode.
    let mut kept: Vec<String> = Vec::new();
    let raw_query = parsed.query().unwrap_or_default().to_string();
    for raw in raw_query.split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = url::form_urlencoded::parse(raw.as_bytes()).next() else {
            continue;
        };
        match (key.as_ref(), value.as_ref()) {
            ("sslrootcert", path) => root_cert = Some(path.to_string()),
            ("sslmode", "require" | "verify-ca" | "verify-full") => {
                tls = true;
                kept.push("sslmode=require".into());
            }
            ("sslmode", "disable" | "prefer") => kept.push(raw.to_string()),
            ("sslmode", other) => {
                return Err(bad(format!(
                    "sslmode `{other}` is not disable, prefer, require, verify-ca or verify-full"
                )));
            }
            _ => kept.push(raw.to_string()),
        }
    }
    parsed.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
    let mut config =
        tokio_postgres::Config::from_str(parsed.as_str()).map_err(|e| bad(e.to_string()))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    let mut options = config.get_options().unwrap_or_default().to_string();
    for (name, value) in SESSION_LIMITS {
        if !options.contains(name) {
            options.push_str(&format!(" -c {name}={value}"));
        }
    }
    config.options(options.trim());
    if root_cert.is_some() && !tls {
        return Err(bad(
            "sslrootcert needs sslmode=require, verify-ca or verify-full".into(),
        ));
    }
    let tls = match tls {
        true => Some(connector(root_cert.as_deref())?),
        false => None,
    };
    Ok(Target { config, tls })
}

/// A rustls connector trusting `root_cert` (a PEM file), or the system's CAs without one.
fn connector(root_cert: Option<&str>) -> Result<MakeRustlsConnect, StoreError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let tls_err = |why: String| StoreError::Unavailable(format!("postgres TLS: {why}"));
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| tls_err(format!("cannot read sslrootcert {path}: {e}")))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(tls_err(format!("no certificate in sslrootcert {path}")));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(tls_err(
                    "no system CA certificates found; set sslrootcert=PATH in store.url".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_keep_their_options_and_get_session_limits() {
        let t = target("postgres://u:pw@db.internal:5433/hookgate?application_name=gw").unwrap();
        assert!(t.tls.is_none());
        assert_eq!(t.config.get_application_name(), Some("gw"));
        assert_eq!(t.config.get_dbname(), Some("hookgate"));
        let options = t.config.get_options().unwrap();
        assert!(options.contains("lock_timeout=5s") && options.contains("statement_timeout=30s"));
        let own =
            target("postgres://u@h/d?options=-c%20statement_timeout%3D1s&sslmode=disable").unwrap();
        assert_eq!(
            own.config.get_options(),
            Some("-c statement_timeout=1s -c lock_timeout=5s"),
            "the URL's own limit stays, decoded as written"
        );
    }

    #[test]
    fn libpq_tls_options_are_understood() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let t = target(&format!("postgres://u@h/d?sslmode={mode}")).map(|t| t.tls.is_some());
            // A machine without system CAs says so, naming the fix.
            match t {
                Ok(tls) => assert!(tls, "{mode}"),
                Err(e) => assert!(e.to_string().contains("sslrootcert"), "{e}"),
            }
        }
        for mode in ["disable", "prefer"] {
            assert!(
                target(&format!("postgres://u@h/d?sslmode={mode}"))
                    .unwrap()
                    .tls
                    .is_none()
            );
        }
    }

    #[test]
    fn errors_name_the_problem_not_the_password() {
        let e = target("postgres://u:hunter2@h/d?sslmode=bogus")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("sslmode") && !e.contains("hunter2"), "{e}");
        let e = target("postgres://u:hunter2@h/d?sslmode=require&sslrootcert=/nope.pem")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/nope.pem") && !e.contains("hunter2"), "{e}");
        let e = target("postgres://u:hunter2@h/d?sslrootcert=/ca.pem")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("sslmode=require"), "{e}");
    }
}
