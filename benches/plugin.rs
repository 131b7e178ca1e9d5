//! Per-event cost of a wasm plugin against the same formatting written in jq, in one process.
//!
//! ```sh
//! cargo bench --bench plugin [-- --calls 20000]
//! ```
//!
//! Both sides start from the stored event (`catalog/spacelift/samples/run_finished.json`,
//! about 2 KB) and end with the JSON bytes a delivery would carry:
//!
//! - wasm: serialise the envelope to JSON, then `Plugin::call` of plugins/'s slack-notify — a
//!   fresh instance from the pool, the call, and the output copied out of the guest.
//! - jq: run a jq program that builds the same Block Kit message (header, fields, colour,
//!   button, context) over the envelope, then serialise its output.
//!
//! Both are timed per call; the table gives mean, p50, p99 and the ratio of the means.

use hookgate::testing::{
    BodyFormat, Engine, Envelope, EventTypeRule, JqProgram, StoredEvent, WasmLimits as Limits,
    jq_to_json,
};
use std::time::{Duration, Instant};

/// slack-notify's Spacelift message, written in jq.
const SLACK_IN_JQ: &str = include_str!("slack.jq");

/// A catalog sample, `<preset>/<file>`.
fn sample(name: &str) -> Vec<u8> {
    let (preset, file) = name.split_once('/').unwrap_or(("", name));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("catalog")
        .join(preset)
        .join("samples")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Stats {
    mean: Duration,
    p50: Duration,
    p99: Duration,
}

fn measure(calls: usize, mut f: impl FnMut() -> usize) -> Stats {
    // Warm up caches, the instance pool and the allocator.
    for _ in 0..calls / 10 {
        std::hint::black_box(f());
    }
    let mut times: Vec<Duration> = (0..calls)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    times.sort();
    let total: Duration = times.iter().sum();
    Stats {
        mean: total / calls as u32,
        p50: times[calls / 2],
        p99: times[calls * 99 / 100],
    }
}

fn main() -> anyhow::Result<()> {
    let calls = std::env::args()
        .skip_while(|a| a != "--calls")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000usize);
    let body = sample("spacelift/run_finished.json");
    let event = StoredEvent {
        id: "evt_01BENCH".into(),
        source: "spacelift".into(),
        received_at: 1_763_900_000_000,
        headers: vec![("content-type".into(), "application/json".into())],
        query: Vec::new(),
        body: body.clone().into(),
    };
    let envelope = Envelope::build(&event, BodyFormat::Json, &EventTypeRule::Spacelift)?;

    let wasm_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugins/target/wasm32-wasip2/release/slack_notify.wasm");
    let wasm = std::fs::read(&wasm_path).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (build plugins/ with `cargo build --release --target wasm32-wasip2`)",
            wasm_path.display()
        )
    })?;
    let engine = Engine::new(
        Limits {
            timeout: Duration::from_secs(1),
            memory_bytes: 64 << 20,
        },
        None,
    )?;
    let plugin = engine.load("slack-notify", &wasm)?;
    let config = r##"{"channel":"#deploys"}"##;
    let program = JqProgram::compile(SLACK_IN_JQ).map_err(anyhow::Error::msg)?;

    // Both produce a message first, so the comparison is of equal work.
    let from_wasm = plugin.call(&envelope.to_json(), config)?;
    let from_jq = program.run(envelope.val().clone())?;
    anyhow::ensure!(
        from_wasm.len() == 1 && from_jq.len() == 1,
        "one message each"
    );

    let wasm = measure(calls, || {
        let json = envelope.to_json();
        plugin.call(&json, config).map_or(0, |m| m[0].body.len())
    });
    let jq = measure(calls, || {
        program
            .run(envelope.val().clone())
            .map_or(0, |v| jq_to_json(&v[0]).map_or(0, |t| t.len()))
    });
    let serialise = measure(calls, || envelope.to_json().len());
    let echo = std::env::var("HOOKGATE_BENCH_ECHO").ok().map(|p| {
        let echo = engine
            .load("echo", &std::fs::read(p).expect("echo"))
            .expect("load echo");
        measure(calls, || {
            let json = envelope.to_json();
            echo.call(&json, "{}").map_or(0, |m| m.len())
        })
    });
    println!(
        "per event, {} byte event, {calls} calls each (after {} warm-up calls)\n",
        body.len(),
        calls / 10
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9}",
        "", "mean µs", "p50 µs", "p99 µs"
    );
    let mut rows = vec![
        ("slack-notify (wasm, fresh instance)", &wasm),
        ("same message in jq", &jq),
        ("  of which: envelope to JSON", &serialise),
    ];
    if let Some(e) = &echo {
        rows.push(("  trivial guest (echo), same input", e));
    }
    for (name, s) in rows {
        println!(
            "{name:<34} {:>9.1} {:>9.1} {:>9.1}",
            s.mean.as_secs_f64() * 1e6,
            s.p50.as_secs_f64() * 1e6,
            s.p99.as_secs_f64() * 1e6
        );
    }
    println!(
        "\nwasm / jq (means): {:.2}×; output {} bytes (wasm) vs {} bytes (jq)",
        wasm.mean.as_secs_f64() / jq.mean.as_secs_f64(),
        from_wasm[0].body.len(),
        jq_to_json(&from_jq[0]).map_or(0, |t| t.len())
    );
    Ok(())
}
