//! The one way kagi trusts a server it connects to over TLS (the mail
//! relay, PostgreSQL): rustls with ring, the certificate chain and the
//! server's name always verified, against the CAs of a configured PEM file
//! or else the public web roots. There is no switch to accept any
//! certificate.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;

/// A client configuration that trusts the CAs of `ca_file` alone, or the
/// public web roots without one. An error names `field` and the file.
pub fn client_config(ca_file: Option<&Path>, field: &str) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let problem = |e: &dyn std::fmt::Display| match ca_file {
        Some(path) => format!("{field} {}: {e}", path.display()),
        None => format!("{field}: {e}"),
    };
    match ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| problem(&e))? {
                roots
                    .add(cert.map_err(|e| problem(&e))?)
                    .map_err(|e| problem(&e))?;
            }
            if roots.is_empty() {
                return Err(problem(&"holds no PEM certificate"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| problem(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// What a refused handshake says about the certificate, when that was
/// the reason: rustls' words, and whom kagi trusts.
pub fn certificate_problem(
    e: &std::io::Error,
    ca_file: Option<&Path>,
    field: &str,
) -> Option<String> {
    let rustls::Error::InvalidCertificate(why) = e.get_ref()?.downcast_ref::<rustls::Error>()?
    else {
        return None;
    };
    let trusted = match ca_file {
        Some(path) => format!("kagi trusts only the CAs in {} ({field})", path.display()),
        None => format!("kagi trusts the public web roots (set {field} for a private CA)"),
    };
    Some(format!(
        "the server's certificate is refused: {why}; {trusted}"
    ))
}
