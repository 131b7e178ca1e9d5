//! The engine itself: its compile cache on disk, its epoch thread's lifetime and when it ticks,
//! and sharing engines and plugins across threads.

use super::*;

#[test]
fn a_second_engine_loads_from_the_cache_and_a_bad_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        timeout: SLACK_TIMEOUT,
        memory_bytes: MEMORY,
    };
    let wasm = guest_bytes("echo");
    let first = Engine::new(limits, Some(dir.path().into())).unwrap();
    let sha256 = first.load("echo", &wasm).unwrap().sha256().to_string();
    assert_eq!(first.compilations(), 1);
    let file = dir.path().join(format!("{sha256}.cwasm"));
    assert!(file.is_file(), "no {}", file.display());

    let second = Engine::new(limits, Some(dir.path().into())).unwrap();
    let echo = second.load("echo", &wasm).unwrap();
    assert_eq!(second.compilations(), 0, "recompiled despite the cache");
    assert_eq!(
        echo.call(&event(serde_json::json!(7)), r#"{"quiet":true}"#)
            .unwrap()[0]
            .body,
        "7"
    );

    for damage in [
        b"junk".to_vec(),
        std::fs::read(&file).unwrap()[..1000].to_vec(),
    ] {
        std::fs::write(&file, damage).unwrap();
        let third = Engine::new(limits, Some(dir.path().into())).unwrap();
        third.load("echo", &wasm).unwrap();
        assert_eq!(
            third.compilations(),
            1,
            "a damaged entry must be recompiled"
        );
    }
    let fourth = Engine::new(limits, Some(dir.path().into())).unwrap();
    fourth.load("echo", &wasm).unwrap();
    assert_eq!(
        fourth.compilations(),
        0,
        "the recompiled entry was not rewritten"
    );
}

#[test]
fn the_epoch_thread_stops_with_the_last_engine_clone() {
    let engine = Engine::new(
        Limits {
            timeout: TIMEOUT,
            memory_bytes: MEMORY,
        },
        None,
    )
    .unwrap();
    let weak = engine.inner.engine.weak();
    let clone = engine.clone();
    drop(engine);
    assert!(weak.upgrade().is_some(), "a clone is still alive");
    // Dropping the last clone joins the ticker thread, which held the last wasmtime handle.
    drop(clone);
    assert!(
        weak.upgrade().is_none(),
        "the epoch thread still holds the engine"
    );
}

#[test]
fn the_epoch_advances_only_while_a_call_runs() {
    let limits = Limits {
        timeout: TIMEOUT,
        memory_bytes: MEMORY,
    };
    let engine = Engine::new(limits, None).unwrap();
    let ticks = || engine.inner.ticker.ticks();
    let spin = engine.load("spin", &guest_bytes("spin")).unwrap();
    std::thread::sleep(TICK * 10);
    assert_eq!(ticks(), 0, "the epoch thread ticked with no call running");

    // The spinning guest is stopped by its deadline, so the epoch advanced through it.
    let error = spin.call(&event(serde_json::json!({})), "{}").unwrap_err();
    assert!(matches!(error, PluginError::Timeout { .. }), "{error:?}");
    let after_call = ticks();
    assert!(
        after_call >= deadline_ticks(TIMEOUT),
        "{after_call} ticks for a deadline of {}",
        deadline_ticks(TIMEOUT)
    );

    // Idle again: at most the tick the thread was sleeping towards when the call ended.
    std::thread::sleep(TICK * 10);
    assert!(ticks() <= after_call + 1, "{} after {after_call}", ticks());
}

#[test]
fn engines_and_plugins_are_send_and_sync() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Engine>();
    send_sync::<Plugin>();
}

#[test]
fn concurrent_calls_each_get_their_own_instance() {
    let echo = plugin("echo");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let echo = echo.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let body = serde_json::json!({"thread": t, "i": i});
                    let messages = echo
                        .call(&event(body.clone()), r#"{"quiet":true}"#)
                        .unwrap();
                    let echoed: serde_json::Value =
                        serde_json::from_slice(&messages[0].body).unwrap();
                    assert_eq!(echoed, body);
                    assert_eq!(header(&messages[0], "x-calls"), Some("1"));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}
