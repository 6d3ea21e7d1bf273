//! TLS server configuration (rustls with the `ring` provider), shared by every
//! listener that offers TLS: the HTTP API and SIP over TLS.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// Why TLS material cannot be used; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// A client config that trusts only the CA certificates in the PEM file `ca_path`
/// (a carrier gateway's own CA or the public CA that signed it: named explicitly,
/// never the whole system store).
pub fn client_config(ca_path: &str) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(ca_path).map_err(|e| TlsError(format!("{ca_path}: {e}")))?
    {
        let cert = cert.map_err(|e| TlsError(format!("{ca_path}: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| TlsError(format!("{ca_path}: {e}")))?;
    }
    if roots.is_empty() {
        return Err(TlsError(format!("{ca_path}: no certificate found")));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A server config from a PEM certificate chain and a PEM private key, with safe
/// default protocol versions and no client authentication.
pub fn server_config(cert_path: &str, key_path: &str) -> Result<rustls::ServerConfig, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| TlsError(format!("cert {cert_path}: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("cert {cert_path}: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError(format!("cert {cert_path}: no certificate found")));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| TlsError(format!("key {key_path}: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError(e.to_string()))
}
