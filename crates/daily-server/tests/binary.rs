//! The `daily-server` binary: prints its URL, serves, and stops cleanly on SIGINT and SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use daily_proto::ServerMessage;

async fn run_and_stop(signal: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_daily-server"))
        .args(["--host", "127.0.0.1", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn daily-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("daily-server listening on http://")
        .expect(&line)
        .to_owned();
    let addr = url.parse().expect("host:port");
    let (mut client, _) = common::Client::join(addr, "room", "alice").await;

    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest = client.until_closed().await;
    assert!(
        matches!(rest.as_slice(), [ServerMessage::CallEnded { .. }]),
        "{rest:?}"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{signal}: {status:?}");
}

#[tokio::test]
async fn stops_cleanly_on_sigterm() {
    run_and_stop("TERM").await;
}

#[tokio::test]
async fn stops_cleanly_on_sigint() {
    run_and_stop("INT").await;
}

#[test]
fn rejects_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_daily-server"))
        .arg("--port=nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port"));
}
