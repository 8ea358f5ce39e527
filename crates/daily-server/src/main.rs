//! `daily-server [--host ADDR] [--port PORT] [--api-key KEY] [--tls-cert PEM --tls-key PEM]
//! [--recordings-dir DIR] [--redis URL [--node-url URL]] [limits]`: runs a room server until SIGINT or SIGTERM.
//! Logs go to stderr (`RUST_LOG`, default `info`); stdout carries one line, the listening URL.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use daily_server::{RoomServer, ServerConfig, TlsConfig};

const USAGE: &str = "usage: daily-server [--host ADDR] [--port PORT] [--api-key KEY]
                    [--tls-cert PEM --tls-key PEM] [--recordings-dir DIR]
                    [--redis URL [--node-url URL]] [limits]

Runs the open Daily room server: HTTP + WebSocket signalling on ADDR:PORT and the audio SFU on a
UDP port of ADDR picked by the system. Stops cleanly on Ctrl-C or SIGTERM.

options:
  --host ADDR   address to bind (default 127.0.0.1; use 0.0.0.0 only if you mean it)
  --port PORT   HTTP port (default 7880; 0 picks a free one)
  --api-key KEY enables the REST API (/v1: rooms, meeting tokens; Authorization: Bearer KEY)
                and signs meeting tokens; private rooms need it. Default: the DAILY_API_KEY
                environment variable (preferred: other users can read command lines);
                the flag wins. Without a key only ad-hoc public rooms exist.
  --tls-cert PEM  serve HTTPS and WSS with this certificate chain (server certificate first);
  --tls-key PEM   and its private key (PKCS#8, PKCS#1 or SEC1). Both or neither.
  --recordings-dir DIR  turns on server-side recording (CallClient.start_recording): one
                directory per recording under DIR (created if missing) with an Ogg/Opus file
                per audio track, a mixed mix.ogg and recording.json; listed and served by
                GET /v1/recordings (needs --api-key). Without it start_recording fails.
  --redis URL   cluster mode (docs/scaling.md): redis://[:password@]HOST:PORT[/db] of the Redis
                the nodes share; this server registers as a node with a heartbeat (1 s, expiry
                4 s) and GET /v1/nodes lists the live nodes. Fails to start if Redis is unreachable.
  --node-url URL  with --redis: the base URL clients reach this node on (default: its own URL)
  --drain-timeout SECS  with --redis, SIGTERM drains the node: it takes no new rooms and keeps
                its calls until they end or SECS pass, then stops (default 300; a second
                SIGTERM or SIGINT stops at once). Without --redis SIGTERM stops at once.

limits (docs/server-limits.md):
  --http-idle-timeout SECS   close an HTTP connection that sends no request head for SECS
                             (new or kept alive; also bounds a slow head and TLS handshake;
                             default 20)
  --join-timeout SECS        close a signalling WebSocket that sends no join for SECS (default 10)
  --max-connections N        open TCP connections in all; past it 503 (default: half the
                             file-descriptor limit, 64-4096)
  --max-connections-per-ip N open TCP connections from one address (IPv6: /64); past it 429
                             (default 512)
  --max-pending-joins N      signalling WebSockets not yet joined; past it 503 (default 256)
  --resume-grace SECS        keep a participant whose signalling dropped without leave for SECS,
                             waiting for it to resume (default 60)
  --app-message-rate N       app messages per second per participant, bursts of 2N; 0: no limit
                             (default 20)
  --update-rate N            participant updates (rename, subscriptions, permissions, eject) per
                             second per participant, bursts of 2N; 0: no limit (default 5)

  -h, --help    show this help
  -V, --version show the version";

/// Parses the command line; `env_key` is `DAILY_API_KEY`, used when `--api-key` is absent.
fn parse_args(
    args: impl Iterator<Item = String>,
    env_key: Option<String>,
) -> Result<Option<(ServerConfig, Duration)>, String> {
    let mut drain_timeout = daily_server::DEFAULT_DRAIN_TIMEOUT;
    let mut config = ServerConfig {
        port: 7880,
        api_key: env_key.filter(|k| !k.is_empty()),
        ..ServerConfig::default()
    };
    let (mut cert, mut key) = (None, None);
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--host" => {
                let v = value("--host")?;
                config.host = v
                    .parse::<IpAddr>()
                    .map_err(|_| format!("--host: {v:?} is not an IP address"))?;
            }
            "--port" => {
                let v = value("--port")?;
                config.port = v
                    .parse()
                    .map_err(|_| format!("--port: {v:?} is not a port number"))?;
            }
            "--api-key" => {
                let v = value("--api-key")?;
                daily_server::validate_api_key(&v).map_err(|e| format!("--api-key: {e}"))?;
                config.api_key = Some(v);
            }
            "--tls-cert" => cert = Some(value("--tls-cert")?),
            "--recordings-dir" => config.recordings_dir = Some(value("--recordings-dir")?.into()),
            "--tls-key" => key = Some(value("--tls-key")?),
            "--redis" => config.redis_url = Some(value("--redis")?),
            "--node-url" => config.node_url = Some(value("--node-url")?),
            "--drain-timeout" => drain_timeout = seconds("--drain-timeout", &value("--drain-timeout")?)?,
            "--http-idle-timeout" => {
                config.limits.http_idle_timeout = seconds("--http-idle-timeout", &value("--http-idle-timeout")?)?
            }
            "--join-timeout" => {
                config.limits.join_timeout = seconds("--join-timeout", &value("--join-timeout")?)?
            }
            "--max-connections" => {
                config.limits.max_connections = count("--max-connections", &value("--max-connections")?)?
            }
            "--max-connections-per-ip" => {
                config.limits.max_connections_per_ip =
                    count("--max-connections-per-ip", &value("--max-connections-per-ip")?)?
            }
            "--max-pending-joins" => {
                config.limits.max_pending_joins = count("--max-pending-joins", &value("--max-pending-joins")?)?
            }
            "--resume-grace" => config.sfu.resume_grace = seconds("--resume-grace", &value("--resume-grace")?)?,
            "--app-message-rate" => {
                let n = per_second("--app-message-rate", &value("--app-message-rate")?)?;
                config.sfu.app_messages = daily_server::RateLimit { per_second: n, burst: n.saturating_mul(2) };
            }
            "--update-rate" => {
                let n = per_second("--update-rate", &value("--update-rate")?)?;
                config.sfu.updates = daily_server::RateLimit { per_second: n, burst: n.saturating_mul(2) };
            }
            "-h" | "--help" => return Ok(None),
            "-V" | "--version" => {
                println!("daily-server {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    config.tls = match (cert, key) {
        (Some(c), Some(k)) => Some(TlsConfig {
            cert_path: c.into(),
            key_path: k.into(),
        }),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    config.limits.validate()?;
    Ok(Some((config, drain_timeout)))
}

/// A positive number of seconds (fractions allowed).
fn seconds(flag: &str, v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or(format!("{flag}: {v:?} is not a number of seconds in (0, 86400]"))
}

/// A rate per second; 0 turns the limit off.
fn per_second(flag: &str, v: &str) -> Result<u32, String> {
    v.parse::<u32>()
        .ok()
        .filter(|n| *n <= 1_000_000)
        .ok_or(format!("{flag}: {v:?} is not a whole number in [0, 1000000]"))
}

/// A count of at least 1.
fn count(flag: &str, v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or(format!("{flag}: {v:?} is not a whole number >= 1"))
}

fn main() -> ExitCode {
    let env_key = std::env::var("DAILY_API_KEY").ok();
    let (config, drain_timeout) = match parse_args(std::env::args().skip(1), env_key) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("daily-server: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    // Signals first, so a SIGTERM right after the listening line is not missed.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("daily-server: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signals = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    });
    let (mut term, mut int) = match signals {
        Ok(s) => s,
        Err(e) => {
            eprintln!("daily-server: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config_limits = config.limits.clone();
    let mut server = match RoomServer::start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("daily-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "daily-server listening on {}", server.url());
    tracing::info!(limits = ?config_limits, "connection limits");
    if server.has_api_key() {
        tracing::info!(api = %server.api_url(), "REST API enabled");
    } else {
        tracing::info!(
            "no API key: REST API off, only public rooms (set --api-key or DAILY_API_KEY)"
        );
    }
    let _ = stdout.flush();
    let which = runtime.block_on(async {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    });
    if which == "SIGTERM" && server.drain().is_ok() {
        // Cluster mode: drain (docs/scaling.md), bounded by --drain-timeout; a second signal
        // cuts it short.
        tracing::info!(timeout = ?drain_timeout, "SIGTERM: draining (no new rooms; calls go on)");
        let deadline = std::time::Instant::now() + drain_timeout;
        let how = runtime.block_on(async {
            loop {
                if server.is_drained() {
                    return "drained";
                }
                if std::time::Instant::now() >= deadline {
                    return "drain timeout";
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = term.recv() => return "second SIGTERM",
                    _ = int.recv() => return "SIGINT",
                }
            }
        });
        tracing::info!(how, "drain over; stopping");
    } else {
        tracing::info!(signal = which, "stopping");
    }
    server.shutdown();
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<ServerConfig>, String> {
        parse_args(args.iter().map(|s| s.to_string()), None).map(|o| o.map(|(c, _)| c))
    }

    #[test]
    fn drain_timeout() {
        let drain = |args: &[&str]| parse_args(args.iter().map(|s| s.to_string()), None).map(|o| o.unwrap().1);
        assert_eq!(drain(&[]).unwrap(), daily_server::DEFAULT_DRAIN_TIMEOUT);
        assert_eq!(drain(&["--drain-timeout", "2.5"]).unwrap(), Duration::from_millis(2500));
        assert!(drain(&["--drain-timeout", "-1"]).is_err());
    }

    #[test]
    fn arguments() {
        let c = parse(&[]).unwrap().unwrap();
        assert_eq!((c.host.to_string(), c.port), ("127.0.0.1".into(), 7880));
        let c = parse(&["--host", "::1", "--port=0"]).unwrap().unwrap();
        assert_eq!((c.host.to_string(), c.port), ("::1".into(), 0));
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--port", "x"]).is_err());
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert_eq!(parse(&[]).unwrap().unwrap().recordings_dir, None);
        let c = parse(&["--recordings-dir", "/srv/rec"]).unwrap().unwrap();
        assert_eq!(c.recordings_dir, Some("/srv/rec".into()));
        assert!(parse(&["--recordings-dir"]).is_err());
        let c = parse(&[]).unwrap().unwrap();
        assert_eq!((c.redis_url, c.node_url), (None, None));
        let c = parse(&["--redis", "redis://127.0.0.1:6379", "--node-url=http://n1:7880"]).unwrap().unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(c.node_url.as_deref(), Some("http://n1:7880"));
        assert!(parse(&["--redis"]).is_err());
    }

    #[test]
    fn tls_and_limits() {
        let c = parse(&["--tls-cert", "c.pem", "--tls-key=k.pem"]).unwrap().unwrap();
        let tls = c.tls.unwrap();
        assert_eq!((tls.cert_path.to_str(), tls.key_path.to_str()), (Some("c.pem"), Some("k.pem")));
        assert!(parse(&["--tls-cert", "c.pem"]).is_err());
        assert!(parse(&["--tls-key", "k.pem"]).is_err());
        let c = parse(&[
            "--http-idle-timeout", "1.5", "--join-timeout=3", "--max-connections", "10",
            "--max-connections-per-ip", "5", "--max-pending-joins", "2",
        ])
        .unwrap()
        .unwrap();
        let l = c.limits;
        assert_eq!(l.http_idle_timeout, Duration::from_millis(1500));
        assert_eq!(l.join_timeout, Duration::from_secs(3));
        assert_eq!((l.max_connections, l.max_connections_per_ip, l.max_pending_joins), (10, 5, 2));
        for bad in [
            &["--join-timeout", "0"][..],
            &["--http-idle-timeout", "-1"],
            &["--http-idle-timeout", "nan"],
            &["--max-connections", "0"],
            &["--max-pending-joins", "x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse(&[]).unwrap().unwrap().limits, daily_server::Limits::default());
    }

    #[test]
    fn api_key_from_flag_or_env() {
        assert_eq!(parse(&[]).unwrap().unwrap().api_key, None);
        let c = parse(&["--api-key", "k1"]).unwrap().unwrap();
        assert_eq!(c.api_key.as_deref(), Some("k1"));
        let env = |args: &[&str], env: &str| {
            parse_args(args.iter().map(|s| s.to_string()), Some(env.into()))
                .unwrap()
                .unwrap()
                .0
                .api_key
        };
        assert_eq!(env(&[], "from-env").as_deref(), Some("from-env"));
        assert_eq!(
            env(&["--api-key=flag"], "from-env").as_deref(),
            Some("flag")
        );
        assert_eq!(env(&[], ""), None);
        assert!(parse(&["--api-key"]).is_err());
        assert!(parse(&["--api-key", "has space"]).is_err());
        assert!(parse(&["--api-key="]).is_err());
        // The key never shows in debug output.
        assert!(!format!("{c:?}").contains("k1"));
    }
}
