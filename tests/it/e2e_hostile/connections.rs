//! Slow and idle clients (slowloris): a stalled request head is cut off, a trickling body gets 408
//! and stores nothing, and stalled connections neither exhaust the process nor keep others out.
//! Raw TCP on 127.0.0.1 only; every wait is bounded.

use super::{events_stored, passthrough};
use crate::utils::{Gateway, Receiver, client, post_json};
use hookgate::IngressLimits as Limits;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any read here waits: well past every limit the tests set, far below a hang.
const PATIENCE: Duration = Duration::from_secs(6);

fn limits(header: Duration, body: Duration, max_connections: usize) -> Limits {
    Limits {
        header_read_timeout: header,
        body_read_timeout: body,
        max_connections,
    }
}

fn addr(gw: &Gateway) -> String {
    gw.url.trim_start_matches("http://").to_string()
}

/// A connection that sent half a request line and a header name, then stalls.
async fn stalled(addr: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    // A connection past the cap may already be closed: then the write may fail, and reads tell.
    let _ = conn
        .write_all(b"POST /hooks/open HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        .await;
    conn
}

/// Reads until the server closes the connection; what it sent, or `None` if it was still open
/// after `PATIENCE`.
async fn read_until_closed(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 1024];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.is_ok().then_some(got)
}

#[tokio::test]
async fn a_stalled_or_silent_request_head_is_disconnected_after_the_header_timeout() {
    let receiver = Receiver::start().await;
    let timeout = Duration::from_millis(800);
    let gw = Gateway::start_with_limits(
        &passthrough(&receiver.url),
        limits(timeout, Duration::from_secs(5), 64),
    )
    .await;
    let started = Instant::now();
    let mut half = stalled(&addr(&gw)).await;
    let mut silent = TcpStream::connect(addr(&gw)).await.expect("connect");
    for (what, conn) in [("half a head", &mut half), ("nothing", &mut silent)] {
        assert!(
            read_until_closed(conn).await.is_some(),
            "a client that sent {what} was still connected after {PATIENCE:?}"
        );
    }
    let took = started.elapsed();
    assert!(
        took >= timeout && took < timeout * 4,
        "closed after {took:?}"
    );
    let (status, _) = post_json(&gw.hook("open"), r#"{"ok":1}"#, &[]).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn a_body_trickling_past_the_deadline_gets_408_and_nothing_is_stored() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start_with_limits(
        &passthrough(&receiver.url),
        limits(Duration::from_secs(5), Duration::from_millis(800), 64),
    )
    .await;
    let body = br#"{"slow":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;
    let mut conn = TcpStream::connect(addr(&gw)).await.expect("connect");
    let head = format!(
        "POST /hooks/open HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.expect("head");
    let (mut read, mut write) = conn.into_split();
    // One byte every 150 ms: the whole body would take about 7 s, the deadline is 0.8 s.
    let trickle = tokio::spawn(async move {
        for b in body {
            if write.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });
    let mut answer = Vec::new();
    let got = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 1024];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(got.is_ok(), "still waiting after {PATIENCE:?}: {answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("body not received within 0.8 s"),
        "{answer}"
    );
    assert_eq!(events_stored(&gw).await, 0, "nothing stored");
    receiver.expect_exactly(0, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn past_the_cap_stalled_connections_make_room_and_producers_keep_being_served() {
    const CAP: usize = 8;
    let receiver = Receiver::start().await;
    // A header timeout far beyond the test: only the cap can close a stalled connection here.
    let gw = Gateway::start_with_limits(
        &passthrough(&receiver.url),
        limits(Duration::from_secs(60), Duration::from_secs(5), CAP),
    )
    .await;
    // An established producer: one connection, kept alive between its requests.
    let producer = client();
    let post = |n: u32| {
        producer
            .post(gw.hook("open"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"n":{n}}}"#))
            .send()
    };
    let first = post(1).await.expect("first post");
    assert_eq!(first.status().as_u16(), 202);

    // Twice as many stalled connections as the cap allows, one after another.
    let mut held = Vec::new();
    for _ in 0..2 * CAP {
        held.push(stalled(&addr(&gw)).await);
    }
    // The oldest stalled connections made room for the newer ones: closed at once...
    let started = Instant::now();
    assert!(
        read_until_closed(&mut held[0]).await.is_some(),
        "the oldest stalled connection was kept past the cap"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // ...while the newest still wait for their heads.
    let mut probe = [0u8; 1];
    let newest = held.last_mut().expect("held");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), newest.read(&mut probe))
            .await
            .is_err(),
        "the newest stalled connection was closed"
    );

    // A new producer is answered promptly, whatever is stalled...
    let started = Instant::now();
    let (status, _) = post_json(&gw.hook("open"), r#"{"n":2}"#, &[]).await;
    assert_eq!(status, 202);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // ...and the established one on its own connection, never closed for room.
    let again = post(3).await.expect("established producer");
    assert_eq!(again.status().as_u16(), 202);
    let seen = receiver.wait_for(3, PATIENCE).await;
    assert_eq!(seen.len(), 3);
}

#[tokio::test]
async fn stalled_connections_do_not_hold_up_shutdown() {
    let receiver = Receiver::start().await;
    let gw = Gateway::start_with_limits(
        &passthrough(&receiver.url),
        limits(Duration::from_secs(60), Duration::from_secs(60), 64),
    )
    .await;
    let mut half = stalled(&addr(&gw)).await;
    let mut silent = TcpStream::connect(addr(&gw)).await.expect("connect");
    // Let the gateway take both in before it is told to stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let _dir = gw.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    for conn in [&mut half, &mut silent] {
        assert!(read_until_closed(conn).await.is_some(), "still open");
    }
}
