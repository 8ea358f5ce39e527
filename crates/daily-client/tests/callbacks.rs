//! The shell's delivery of events and completions on a real call: in the core's order, and
//! callbacks may call back into the client (their own events and completions follow them)
//! without a deadlock.

use daily_client::{CallClient, CallState, ClientEvent, Engine, JoinSettings};
use daily_server::{RoomServer, ServerConfig};
use serde_json::json;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    State(&'static str),
    Inputs,
    Done(&'static str, bool),
}

#[test]
fn callbacks_may_call_the_client_and_keep_the_order() {
    let server = RoomServer::start(ServerConfig::default()).expect("server");
    let url = server.room_url("callbacks");
    let engine = Engine::start(2).expect("engine");
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let s = seen.clone();
    let client = Arc::new(CallClient::new(
        &engine,
        Arc::new(move |ev| match ev {
            ClientEvent::CallStateUpdated(st) => s.lock().unwrap().push(Seen::State(st.as_str())),
            ClientEvent::InputsUpdated(_) => s.lock().unwrap().push(Seen::Inputs),
            _ => {}
        }),
    ));
    let (tx, rx) = mpsc::channel();
    let (c, s) = (client.clone(), seen.clone());
    client.join(&url, None, JoinSettings::default(), Box::new(move |r| {
        s.lock().unwrap().push(Seen::Done("join", r.is_ok()));
        // From inside a completion: a call whose event and completion come after this one.
        let (s2, tx2) = (s.clone(), tx.clone());
        c.update_inputs(Default::default(), &json!({"camera": false}), Box::new(move |r| {
            s2.lock().unwrap().push(Seen::Done("update_inputs", r.is_ok()));
            let _ = tx2.send(());
        }));
        assert_eq!(c.call_state(), CallState::Joined, "getters work inside a completion");
    }));
    rx.recv_timeout(Duration::from_secs(15)).expect("the nested completion fires");
    let (tx, rx) = mpsc::channel();
    client.leave(Box::new(move |r| {
        let _ = tx.send(r.is_ok());
    }));
    assert!(rx.recv_timeout(Duration::from_secs(10)).expect("leave completes"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            Seen::State("joining"),
            Seen::State("joined"),
            Seen::Done("join", true),
            Seen::Inputs,
            Seen::Done("update_inputs", true),
            Seen::State("leaving"),
            Seen::State("left"),
        ]
    );
}
