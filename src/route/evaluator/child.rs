//! The child side of the evaluator: `hookgate __route-worker`. It reads the resolved config,
//! caps its own address space, then answers each event frame with its routing, one frame per
//! event (written together, see [`super::outbox`]). It must never write anything but frames to
//! stdout, and never outlive the gateway.

use super::EVAL_STACK;
use super::messages::{decode_request, encode_routing};
use super::outbox::Outbox;
use super::wire::read_frame;
use crate::config::Config;
use crate::route::route_event_only;
use std::os::fd::AsFd as _;
use std::sync::Arc;

/// Address space a child needs besides what mappings allocate.
const ADDRESS_SPACE_OVERHEAD: usize = 512 * 1024 * 1024;

/// The child side: `hookgate __route-worker`. Returns when the parent closes the pipe.
pub(crate) fn child_main() -> std::io::Result<()> {
    watch_parent()?;
    let worker = std::thread::Builder::new()
        .name("route-worker".into())
        .stack_size(EVAL_STACK)
        .spawn(serve_child)?;
    worker
        .join()
        .map_err(|_| std::io::Error::other("route worker panicked"))?
}

/// How often the child looks for its parent.
const PARENT_CHECK: std::time::Duration = std::time::Duration::from_millis(200);

/// Ends the child once the gateway that spawned it is gone (killed with -9, say): a child busy
/// with a runaway mapping never reads the closed pipe, and would otherwise spin forever. An
/// orphan is re-parented, so its parent id changes.
fn watch_parent() -> std::io::Result<()> {
    let parent = std::os::unix::process::parent_id();
    std::thread::Builder::new()
        .name("parent-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(PARENT_CHECK);
                if std::os::unix::process::parent_id() != parent {
                    std::process::exit(3);
                }
            }
        })?;
    Ok(())
}

fn serve_child() -> std::io::Result<()> {
    let mut input = std::io::BufReader::new(std::io::stdin().lock());
    // Its own handle on the pipe: `Stdout` is line-buffered, which would split a buffer of
    // binary frames at its last newline byte into two writes.
    let output = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let outbox = Arc::new(Outbox::new(output));
    let init: serde_json::Value =
        serde_json::from_slice(&read_frame(&mut input)?).unwrap_or_default();
    if let Some(mb) = init["memory_mb"].as_u64() {
        // The cap is on address space, which also holds this binary, thread stacks and malloc's
        // per-thread arenas: those get a fixed allowance on top of what mappings may use.
        let bytes = mb
            .saturating_mul(1024 * 1024)
            .saturating_add((EVAL_STACK + ADDRESS_SPACE_OVERHEAD) as u64);
        // Past this, allocation fails and the child aborts: the parent reports it as a crash.
        let _ = rlimit::setrlimit(rlimit::Resource::AS, bytes, bytes);
    }
    let config = match Config::parse_resolved(init["config"].as_str().unwrap_or_default()) {
        Ok(c) => c,
        Err(e) => {
            // Keys only: the messages may quote the resolved text, and it holds secrets.
            let keys: Vec<&str> = e.problems.iter().map(|(k, _)| k.as_str()).collect();
            let answer =
                serde_json::json!({ "ok": false, "error": format!("config problems at {keys:?}") });
            outbox.push(answer.to_string().as_bytes())?;
            return outbox.flush();
        }
    };
    // Before the first answer: the gateway nudges only a child that has answered.
    nudged_flushes(outbox.clone())?;
    outbox.push(br#"{"ok":true}"#)?;
    outbox.flush()?;
    loop {
        let frame = match read_frame(&mut input) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let requests = decode_request(&frame).map_err(std::io::Error::other)?;
        for request in &requests {
            let routing = route_event_only(&config, &request.event, request.only.as_deref());
            outbox.push(&encode_routing(&routing).map_err(std::io::Error::other)?)?;
        }
        outbox.flush()?;
    }
}

/// A thread that writes the buffered answers whenever the gateway sends `SIGUSR1` (an answer is
/// late, see [`super::outbox`]). It sleeps in a read until then: nothing per event.
fn nudged_flushes(outbox: Arc<Outbox<std::fs::File>>) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1])?;
    std::thread::Builder::new()
        .name("answer-flush".into())
        .spawn(move || {
            for _ in signals.forever() {
                if outbox.flush().is_err() {
                    // The gateway is gone or the pipe broke: nobody waits for answers.
                    std::process::exit(4);
                }
            }
        })?;
    Ok(())
}
