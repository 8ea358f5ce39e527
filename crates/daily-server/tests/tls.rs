//! HTTPS and WSS served by the server itself, with a test CA made at test time (rcgen):
//! a trusted client joins over `wss://`, an untrusted or plain-text one fails at once (no
//! hang), bad certificate files are refused at start with the file named, and the limits
//! answer over TLS too.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Client;
use daily_proto::ServerMessage;
use daily_server::{Limits, RoomServer, ServerConfig, ServerError, TlsConfig};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::Connector;

/// A test CA and a server certificate it signed, for `localhost` and `127.0.0.1`, written to a
/// fresh directory.
struct Pki {
    dir: PathBuf,
    ca_pem: String,
    config: TlsConfig,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("daily-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("open-daily test CA {tag}"));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(&cert_path, leaf.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Pki {
            dir,
            ca_pem: ca.pem(),
            config: TlsConfig {
                cert_path,
                key_path,
            },
        }
    }

    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tls_server(pki: &Pki, limits: Limits) -> RoomServer {
    RoomServer::start(ServerConfig {
        tls: Some(pki.config.clone()),
        limits,
        ..ServerConfig::default()
    })
    .expect("TLS server starts")
}

/// One HTTPS request (`Connection: close`) trusting `config`; the raw response.
async fn https_get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

async fn wss_join(addr: SocketAddr, pki: &Pki, room: &str, name: &str) -> (Client, ServerMessage) {
    let url = format!("wss://{addr}/ws/{room}");
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        url,
        None,
        true,
        Some(Connector::Rustls(pki.client_config())),
    )
    .await
    .expect("wss connect");
    Client {
        ws,
        keep_meta: false,
    }
    .send_join(name)
    .await
}

#[tokio::test]
async fn https_and_wss_with_a_trusted_ca() {
    let pki = Pki::new("ok");
    let s = tls_server(&pki, Limits::default());
    assert!(s.is_tls());
    assert!(s.url().starts_with("https://127.0.0.1:"), "{}", s.url());
    assert!(s.room_url("r").starts_with("https://"));
    let resp = https_get(s.local_addr(), pki.client_config(), "/")
        .await
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("daily-server"), "{resp}");

    let (_a, ja) = wss_join(s.local_addr(), &pki, "secure", "alice").await;
    assert!(matches!(ja, ServerMessage::Joined { .. }), "{ja:?}");
    let (_b, jb) = wss_join(s.local_addr(), &pki, "secure", "bob").await;
    match jb {
        ServerMessage::Joined { participants, .. } => {
            assert_eq!(participants.len(), 1);
            assert_eq!(participants[0].user_name, "alice");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_handshake_at_once() {
    let pki = Pki::new("server");
    let other = Pki::new("other");
    let s = tls_server(&pki, Limits::default());
    let t0 = Instant::now();
    let e = https_get(s.local_addr(), other.client_config(), "/")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("UnknownIssuer")
            || e.to_string().contains("invalid peer certificate"),
        "{e}"
    );
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    // The server is unharmed.
    let resp = https_get(s.local_addr(), pki.client_config(), "/")
        .await
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

#[test]
fn plain_http_to_the_tls_port_is_closed_at_once() {
    let pki = Pki::new("plain");
    let s = tls_server(&pki, Limits::default());
    use std::io::{Read, Write};
    let t0 = Instant::now();
    let mut c = std::net::TcpStream::connect(s.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The server may close (and reset) as soon as it sees the first bytes: errors are fine.
    let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = Vec::new();
    let r = c.read_to_end(&mut out);
    assert!(
        r.is_ok()
            || r.as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{r:?}"
    );
    assert!(
        !out.starts_with(b"HTTP/"),
        "a plain-text answer from a TLS port"
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn limits_answer_over_tls_too() {
    let pki = Pki::new("limits");
    let s = tls_server(
        &pki,
        Limits {
            max_connections_per_ip: 2,
            http_idle_timeout: Duration::from_secs(5),
            ..Limits::default()
        },
    );
    let held = [
        std::net::TcpStream::connect(s.local_addr()).unwrap(),
        std::net::TcpStream::connect(s.local_addr()).unwrap(),
    ];
    let resp = https_get(s.local_addr(), pki.client_config(), "/")
        .await
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 429"), "{resp}");
    assert!(resp.contains("limit 2"), "{resp}");
    drop(held);
}

#[test]
fn bad_files_are_refused_at_start_naming_the_file() {
    let pki = Pki::new("bad");
    let start = |config: TlsConfig| {
        RoomServer::start(ServerConfig {
            tls: Some(config),
            ..ServerConfig::default()
        })
        .map(|_| ())
        .unwrap_err()
    };
    let missing = pki.dir.join("missing.pem");
    let e = start(TlsConfig {
        cert_path: missing.clone(),
        key_path: pki.config.key_path.clone(),
    });
    assert!(
        matches!(&e, ServerError::Tls { path, .. } if path == &missing),
        "{e}"
    );
    assert!(e.to_string().contains("missing.pem"), "{e}");

    // The key file given as the certificate, and the certificate as the key.
    let e = start(TlsConfig {
        cert_path: pki.config.key_path.clone(),
        key_path: pki.config.key_path.clone(),
    });
    assert!(e.to_string().contains("no PEM certificate"), "{e}");
    let e = start(TlsConfig {
        cert_path: pki.config.cert_path.clone(),
        key_path: pki.config.cert_path.clone(),
    });
    assert!(e.to_string().contains("no PEM private key"), "{e}");

    // A key that is not the certificate's.
    let stray = pki.dir.join("stray.pem");
    std::fs::write(&stray, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let e = start(TlsConfig {
        cert_path: pki.config.cert_path.clone(),
        key_path: stray.clone(),
    });
    assert!(
        matches!(&e, ServerError::Tls { path, .. } if path == &stray),
        "{e}"
    );
}
