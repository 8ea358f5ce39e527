//! Starting and stopping servers leaves no thread behind (its own test binary, so no other test
//! runs threads meanwhile).

mod common;

use daily_server::{RoomServer, ServerConfig};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("procfs")
        .count()
}

#[test]
fn start_and_shutdown_leave_no_threads() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = threads();
    for i in 0..10 {
        let mut server = RoomServer::start(ServerConfig::default()).expect("start");
        assert!(threads() > before);
        let addr = server.local_addr();
        // A participant connected at shutdown time, plus a plain HTTP request.
        let mut client = rt
            .block_on(async move { common::Client::join(addr, "room", &format!("p{i}")).await.0 });
        assert_eq!(common::http_get(addr, "/").0, 200);
        server.shutdown();
        rt.block_on(async { client.until_closed().await });
        assert_eq!(threads(), before, "threads left after cycle {i}");
    }
}
