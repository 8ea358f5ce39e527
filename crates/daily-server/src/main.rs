//! `daily-server [--host ADDR] [--port PORT] [--api-key KEY]`: runs a room server until SIGINT
//! or SIGTERM.
//! Logs go to stderr (`RUST_LOG`, default `info`); stdout carries one line, the listening URL.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;

use daily_server::{RoomServer, ServerConfig};

const USAGE: &str = "usage: daily-server [--host ADDR] [--port PORT] [--api-key KEY]

Runs the open Daily room server: HTTP + WebSocket signalling on ADDR:PORT and the audio SFU on a
UDP port of ADDR picked by the system. Stops cleanly on Ctrl-C or SIGTERM.

options:
  --host ADDR   address to bind (default 127.0.0.1; use 0.0.0.0 only if you mean it)
  --port PORT   HTTP port (default 7880; 0 picks a free one)
  --api-key KEY enables the REST API (/v1: rooms, meeting tokens; Authorization: Bearer KEY)
                and signs meeting tokens; private rooms need it. Default: the DAILY_API_KEY
                environment variable (preferred: other users can read command lines);
                the flag wins. Without a key only ad-hoc public rooms exist.
  -h, --help    show this help
  -V, --version show the version";

/// Parses the command line; `env_key` is `DAILY_API_KEY`, used when `--api-key` is absent.
fn parse_args(
    args: impl Iterator<Item = String>,
    env_key: Option<String>,
) -> Result<Option<ServerConfig>, String> {
    let mut config = ServerConfig {
        port: 7880,
        api_key: env_key.filter(|k| !k.is_empty()),
        ..ServerConfig::default()
    };
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
            "-h" | "--help" => return Ok(None),
            "-V" | "--version" => {
                println!("daily-server {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(config))
}

fn main() -> ExitCode {
    let env_key = std::env::var("DAILY_API_KEY").ok();
    let config = match parse_args(std::env::args().skip(1), env_key) {
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
    let mut server = match RoomServer::start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("daily-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "daily-server listening on {}", server.url());
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
    tracing::info!(signal = which, "stopping");
    server.shutdown();
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<ServerConfig>, String> {
        parse_args(args.iter().map(|s| s.to_string()), None)
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
