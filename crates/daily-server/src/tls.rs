//! HTTPS and WSS served by the server itself (`ServerConfig::tls`, `daily-server --tls-cert
//! --tls-key`): rustls with the ring provider (already in the tree through webrtc-rs; no
//! OpenSSL). The provider is passed explicitly rather than installed process-wide, so an
//! embedding program's own rustls set-up is left alone, and a second provider compiled in by
//! some other crate cannot make rustls refuse to pick one.
//!
//! HTTP/1.1 only (ALPN `http/1.1`): the signalling WebSocket is an HTTP/1.1 upgrade, and the
//! call page is a handful of small files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::ServerError;

/// Where the server's certificate and key are (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The certificate chain: the server's certificate first, then any intermediates (the
    /// `fullchain.pem` of ACME clients).
    pub cert_path: PathBuf,
    /// The private key of the first certificate: PKCS#8, PKCS#1 (RSA) or SEC1 (EC), PEM.
    pub key_path: PathBuf,
}

fn tls_err(path: &Path, reason: impl Into<String>) -> ServerError {
    ServerError::Tls {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Loads the certificate chain and key and builds the acceptor. Every failure names the file.
pub(crate) fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, ServerError> {
    let certs = CertificateDer::pem_file_iter(&config.cert_path)
        .map_err(|e| tls_err(&config.cert_path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(&config.cert_path, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_err(
            &config.cert_path,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key_path).map_err(|e| {
        let reason = match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "no PEM private key (PKCS#8, PKCS#1 or SEC1) in the file".to_owned()
            }
            e => e.to_string(),
        };
        tls_err(&config.key_path, reason)
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&config.cert_path, e.to_string()))?
        .with_no_client_auth()
        // Also checks that the key belongs to the first certificate.
        .with_single_cert(certs, key)
        .map_err(|e| {
            tls_err(
                &config.key_path,
                format!("does not fit the certificate: {e}"),
            )
        })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}
