//! The signalling WebSocket's connect, over TLS for `https://` rooms (`wss://`).
//!
//! TLS is rustls with the ring provider (no OpenSSL, no native-tls; ring is already in the tree
//! through webrtc-rs), passed explicitly so the process-wide default provider, which an
//! embedding program may have set, is left alone.
//!
//! # Which servers are trusted
//! The platform's trusted roots, read with `rustls-native-certs` (on Linux the distribution's
//! bundle, e.g. Debian's `/etc/ssl/certs/ca-certificates.crt`; the system keychain on macOS
//! and Windows). As in OpenSSL, curl and Python's `ssl`, the standard variables choose another
//! store: `SSL_CERT_FILE` names a PEM bundle and `SSL_CERT_DIR` a directory of PEM files, and
//! when either is set *it is the store* (the system bundle is not read). That is how a test, or
//! a deployment with a private CA, trusts its own root: point `SSL_CERT_FILE` at a bundle that
//! holds it (append the system bundle to the file to keep trusting public servers too).
//!
//! The store is read at the first `wss://` connect and again whenever either variable has
//! changed since (reading Debian's bundle costs a few milliseconds; a join is not slowed by it
//! twice). A set variable whose file cannot be read or holds no certificate fails the join
//! with an error naming the file, rather than connecting with fewer roots than asked for.

use std::ffi::OsString;
use std::sync::{Arc, Mutex};

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// The environment variables that choose the trusted roots (see the module docs).
const CERT_FILE_VAR: &str = "SSL_CERT_FILE";
const CERT_DIR_VAR: &str = "SSL_CERT_DIR";

/// Why the WebSocket could not be opened, worded for a join error. `Display` is the message.
#[derive(Debug)]
pub(crate) struct ConnectError(String, bool);

impl ConnectError {
    fn new(message: String) -> Self {
        ConnectError(message, false)
    }

    /// Nothing listens at the server's address (TCP refused, RFC 9293 section 3.5.2): the
    /// server process is gone, not the network.
    pub(crate) fn refused(&self) -> bool {
        self.1
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Env = (Option<OsString>, Option<OsString>);

/// The last config built and the environment it was built for.
static CONFIG: Mutex<Option<(Env, Arc<rustls::ClientConfig>)>> = Mutex::new(None);

/// Opens the signalling WebSocket at `ws_url` (`ws://` or `wss://`), Nagle off (`join` and the
/// publish offer go out back to back). The same result shape as tokio-tungstenite's connect.
pub(crate) async fn connect_ws(
    ws_url: &str,
) -> Result<(WebSocketStream<MaybeTlsStream<TcpStream>>, Response), ConnectError> {
    let connector = if ws_url.starts_with("wss://") {
        Some(Connector::Rustls(client_config()?))
    } else {
        Some(Connector::Plain)
    };
    tokio_tungstenite::connect_async_tls_with_config(ws_url, None, true, connector).await.map_err(|e| {
        let refused = matches!(&e, WsError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused);
        let mut c = describe(e);
        c.1 = refused;
        c
    })
}

/// The rustls client config for the current environment (cached; see the module docs).
pub(crate) fn client_config() -> Result<Arc<rustls::ClientConfig>, ConnectError> {
    let env: Env = (std::env::var_os(CERT_FILE_VAR), std::env::var_os(CERT_DIR_VAR));
    let mut cached = CONFIG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((built_for, config)) = cached.as_ref()
        && *built_for == env
    {
        return Ok(config.clone());
    }
    let config = Arc::new(build_config(&env)?);
    *cached = Some((env, config.clone()));
    Ok(config)
}

fn build_config(env: &Env) -> Result<rustls::ClientConfig, ConnectError> {
    let mut roots = RootCertStore::empty();
    let mut added = 0;
    let mut errors = Vec::new();
    if let Some(file) = &env.0 {
        // Read here rather than by rustls-native-certs (which would read the same file) to
        // name the file and the PEM problem precisely.
        let var = format!("{CERT_FILE_VAR}={}", file.to_string_lossy());
        let certs = CertificateDer::pem_file_iter(file)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| ConnectError::new(format!("cannot load the trusted certificates of {var}: {e}")))?;
        added += roots.add_parsable_certificates(certs).0;
    }
    if env.0.is_none() || env.1.is_some() {
        let loaded = rustls_native_certs::load_native_certs();
        added += roots.add_parsable_certificates(loaded.certs).0;
        errors = loaded.errors;
    }
    let chosen = match env {
        (Some(f), _) => Some(format!("{CERT_FILE_VAR}={}", f.to_string_lossy())),
        (None, Some(d)) => Some(format!("{CERT_DIR_VAR}={}", d.to_string_lossy())),
        (None, None) => None,
    };
    match (&chosen, errors.first()) {
        // The caller named a store: any error in it is theirs to know about.
        (Some(var), Some(e)) => {
            return Err(ConnectError::new(format!(
                "cannot load the trusted certificates of {var}: {e}"
            )));
        }
        // The system store: unreadable extras are common (a stray file); say so, go on.
        (None, Some(_)) => {
            for e in &errors {
                tracing::debug!(error = %e, "skipped part of the system certificate store");
            }
        }
        _ => {}
    }
    if added == 0 {
        return Err(ConnectError::new(match chosen {
            Some(var) => format!("no usable PEM certificate in {var}"),
            None => format!(
                "no trusted root certificates found in the system store; install the \
                 ca-certificates package or set {CERT_FILE_VAR} to a PEM bundle"
            ),
        }));
    }
    tracing::debug!(roots = added, store = chosen.as_deref().unwrap_or("system"), "TLS roots loaded");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::new(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The WebSocket upgrade is HTTP/1.1; saying so keeps an HTTP/2-capable proxy from
    // choosing h2, where the upgrade does not exist.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Words a connect failure for the join error: the server's refusal with its reason (e.g. a
/// connection limit), or for an untrusted certificate what to trust and how.
fn describe(e: WsError) -> ConnectError {
    if let WsError::Http(resp) = &e {
        let body = resp
            .body()
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).trim().to_owned())
            .filter(|b| !b.is_empty());
        let status = resp.status();
        return ConnectError::new(match body {
            Some(b) => format!("the server refused the connection: {status}: {b}"),
            None => format!("the server refused the connection: {status}"),
        });
    }
    let cut = match &e {
        WsError::Protocol(tokio_tungstenite::tungstenite::error::ProtocolError::HandshakeIncomplete) => true,
        WsError::Io(io) => {
            io.get_ref().is_none_or(|i| !i.is::<rustls::Error>())
                && matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::UnexpectedEof
                )
        }
        _ => false,
    };
    if cut {
        // A daily-server past its connection limits closes what it cannot answer.
        return ConnectError::new(format!(
            "the server closed the connection before answering the WebSocket upgrade \
             (it may be over its connection limits; retry later): {e}"
        ));
    }
    let tls = match &e {
        WsError::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        WsError::Tls(tokio_tungstenite::tungstenite::error::TlsError::Rustls(r)) => Some(&**r),
        _ => None,
    };
    match tls {
        Some(rustls::Error::InvalidCertificate(why)) => ConnectError::new(format!(
            "TLS: the server's certificate is not trusted ({why:?}); it must chain to a root \
             in the system store or in the PEM bundle named by {CERT_FILE_VAR}"
        )),
        Some(r) => ConnectError::new(format!("TLS: {r}")),
        None => ConnectError::new(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_store_that_is_missing_or_empty_is_an_error() {
        let dir = std::env::temp_dir().join(format!("daily-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let e = build_config(&(Some(missing.clone().into()), None)).unwrap_err();
        assert!(e.0.contains("SSL_CERT_FILE") && e.0.contains("missing.pem"), "{e}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = build_config(&(Some(empty.clone().into()), None)).unwrap_err();
        assert!(e.0.contains("no usable PEM certificate") && e.0.contains("empty.pem"), "{e}");
        let e = describe(WsError::Io(std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ))));
        assert!(e.0.contains("not trusted") && e.0.contains("SSL_CERT_FILE"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
