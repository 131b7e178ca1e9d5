//! What a plugin costs in each language, beside the same message in jq, in one process: per call
//! (a fresh instance each time, as the gateway runs them), and per upload (compiling until it is
//! active, then loading the compiled code again as a restart does).
//!
//! ```sh
//! cargo bench --bench plugin [-- --calls 2000] [--extra FILE.wasm]...
//! ```
//!
//! Every side starts from the stored event (`catalog/spacelift/samples/run_finished.json`, about
//! 1.5 KB, a 2 KB envelope) and ends with the JSON bytes a delivery would carry, the same Slack
//! Block Kit message (header, fields, colour, button, context):
//!
//! - Rust: plugins/'s slack-notify (build plugins/ first: `cargo build --release --target
//!   wasm32-wasip2`).
//! - Python and JavaScript: `benches/plugins/slack-py` and `slack-js`, built here with `hookgate
//!   plugin build` and the pinned toolchains (`HOOKGATE_PLUGIN_PY_BIN`, `HOOKGATE_PLUGIN_JS_BIN`,
//!   as `scripts/test` installs them, or on `PATH`); a language whose toolchain is missing is
//!   reported as skipped.
//! - jq: `benches/slack.jq` over the envelope, then its output serialised.
//!
//! A wasm call is: the envelope serialised to JSON, a fresh instance from the pool, the call, the
//! output copied out. `--extra` adds any component, called with `{}` as its config.

use clap::Parser;
use hookgate::testing::{
    BodyFormat, Engine, Envelope, EventTypeRule, JqProgram, StoredEvent, WasmLimits as Limits,
    jq_to_json, thread_page_faults,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// slack-notify's Spacelift message, written in jq.
const SLACK_IN_JQ: &str = include_str!("slack.jq");

#[derive(Debug, Parser)]
#[command(about = "per-call and per-upload cost of plugins in each language, beside jq")]
struct Args {
    /// Timed calls per language (after a tenth as many warm-up calls).
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// Another component to measure (called with `{}` as its config).
    #[arg(long)]
    extra: Vec<PathBuf>,
    /// Only the components whose name contains this (for profiling one of them).
    #[arg(long)]
    only: Option<String>,
    /// `cargo bench` passes this to harness-less benches.
    #[arg(long, hide = true)]
    bench: bool,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A catalog sample, `<preset>/<file>`.
fn sample(name: &str) -> anyhow::Result<Vec<u8>> {
    let (preset, file) = name.split_once('/').unwrap_or(("", name));
    let path = root()
        .join("catalog")
        .join(preset)
        .join("samples")
        .join(file);
    std::fs::read(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

struct Stats {
    mean: Duration,
    p50: Duration,
    p99: Duration,
    /// Page faults per timed call on this thread, where /proc says (Linux): what a fresh
    /// instance's memory costs when its pages are not kept resident between calls.
    faults: Option<f64>,
}

fn measure(calls: usize, mut f: impl FnMut() -> usize) -> Stats {
    // Warm up caches, the instance pool and the allocator.
    for _ in 0..calls / 10 {
        std::hint::black_box(f());
    }
    let faults_before = thread_page_faults();
    let mut times: Vec<Duration> = (0..calls)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    let faults = thread_page_faults()
        .zip(faults_before)
        .map(|(after, before)| (after - before) as f64 / calls as f64);
    times.sort();
    let total: Duration = times.iter().sum();
    Stats {
        mean: total / calls as u32,
        p50: times[calls / 2],
        p99: times[calls * 99 / 100],
        faults,
    }
}

/// One component to measure: its name, its bytes, and the config its route would give it.
struct Component {
    name: String,
    wasm: Vec<u8>,
    config: &'static str,
    /// It builds benches/slack.jq's message, so its output must be jq's, byte for byte.
    like_jq: bool,
}

/// What one component cost.
struct Measured {
    name: String,
    size: usize,
    /// Validating and compiling until it can run: what an upload waits for.
    upload: Duration,
    /// Loading the compiled code from the cache, as a restart does.
    restart: Duration,
    calls: Stats,
    output: Vec<u8>,
}

fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(2),
        memory_bytes: 128 << 20,
    }
}

fn measure_component(c: &Component, envelope: &Envelope, calls: usize) -> anyhow::Result<Measured> {
    let cache = tempfile::tempdir()?;
    let engine = Engine::new(limits(), Some(cache.path().to_path_buf()))?;
    let started = Instant::now();
    let plugin = engine.load(&c.name, &c.wasm)?;
    let upload = started.elapsed();
    let restarted = Engine::new(limits(), Some(cache.path().to_path_buf()))?;
    let started = Instant::now();
    drop(restarted.load(&c.name, &c.wasm)?);
    let restart = started.elapsed();
    let output = plugin
        .call(&envelope.to_json()?, c.config)?
        .into_iter()
        .next()
        .map(|m| m.body.to_vec())
        .unwrap_or_default();
    let mut failed = None;
    let stats = measure(calls, || {
        let json = envelope.to_json().unwrap_or_default();
        match plugin.call(&json, c.config) {
            Ok(m) => m.first().map_or(0, |m| m.body.len()),
            Err(e) => {
                failed = Some(e.to_string());
                0
            }
        }
    });
    // A failed call is fast; timing it as a call would flatter the figures.
    if let Some(why) = failed {
        anyhow::bail!("{}: a timed call failed: {why}", c.name);
    }
    Ok(Measured {
        name: c.name.clone(),
        size: c.wasm.len(),
        upload,
        restart,
        calls: stats,
        output,
    })
}

/// Builds `benches/plugins/<dir>` with `hookgate plugin build` and the toolchain in `bin_var`
/// (or on PATH); `Err` (with why) when the toolchain is missing.
fn build(dir: &str, bin_var: &str) -> Result<Vec<u8>, String> {
    build_at(&root().join("benches/plugins").join(dir), bin_var)
}

/// The Python plugin grown to about 40 MB: at import it builds a table of ~22 MB, which
/// componentize-py's pre-initialisation snapshots into the component's memory image. What the
/// upload of a large component costs, made of data rather than code (see BENCHMARKS.md).
fn build_large_python() -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let project = dir.path().join("large-py");
    let io = |e: std::io::Error| e.to_string();
    std::fs::create_dir(&project).map_err(io)?;
    let app =
        std::fs::read_to_string(root().join("benches/plugins/slack-py/app.py")).map_err(io)?;
    let table = "TABLE = [\"%07d\" % i * 14 for i in range(220_000)]\n";
    std::fs::write(project.join("app.py"), format!("{app}\n{table}")).map_err(io)?;
    std::os::unix::fs::symlink(
        root().join("plugins/sdk-python/hookgate_sdk"),
        project.join("hookgate_sdk"),
    )
    .map_err(io)?;
    build_at(&project, "HOOKGATE_PLUGIN_PY_BIN")
}

fn build_at(project: &Path, bin_var: &str) -> Result<Vec<u8>, String> {
    let dir = project
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(bin) = std::env::var_os(bin_var) {
        let mut dirs = vec![PathBuf::from(bin)];
        dirs.extend(std::env::split_paths(&path));
        path = std::env::join_paths(dirs).map_err(|e| e.to_string())?;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["plugin", "build"])
        .arg(project)
        .env("PATH", path)
        .output()
        .map_err(|e| format!("cannot run hookgate: {e}"))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "skipped ({}; set {bin_var})",
            why.lines().last().unwrap_or("build failed")
        ));
    }
    let wasm = project.join(format!("{dir}.wasm"));
    std::fs::read(&wasm).map_err(|e| format!("{}: {e}", wasm.display()))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let calls = args.calls.max(100);
    let body = sample("spacelift/run_finished.json")?;
    let event = StoredEvent {
        id: "evt_01BENCH".into(),
        source: "spacelift".into(),
        received_at: 1_763_900_000_000,
        headers: vec![("content-type".into(), "application/json".into())],
        query: Vec::new(),
        body: body.clone().into(),
        replays: 0,
    };
    let envelope = Envelope::build(&event, BodyFormat::Json, &EventTypeRule::Spacelift)?;

    let rust = root().join("plugins/target/wasm32-wasip2/release/slack_notify.wasm");
    let rust = std::fs::read(&rust).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (build plugins/ with `cargo build --release --target wasm32-wasip2`)",
            rust.display()
        )
    })?;
    let mut components = vec![Component {
        name: "Rust (slack-notify)".into(),
        wasm: rust,
        config: "{}",
        like_jq: true,
    }];
    let mut skipped = Vec::new();
    for (name, dir, var) in [
        (
            "Python (componentize-py)",
            "slack-py",
            "HOOKGATE_PLUGIN_PY_BIN",
        ),
        (
            "JavaScript (componentize-js)",
            "slack-js",
            "HOOKGATE_PLUGIN_JS_BIN",
        ),
    ] {
        match build(dir, var) {
            Ok(wasm) => components.push(Component {
                name: name.into(),
                wasm,
                config: "{}",
                like_jq: true,
            }),
            Err(why) => skipped.push(format!("{name}: {why}")),
        }
    }
    match build_large_python() {
        Ok(wasm) => components.push(Component {
            name: "Python, ~40 MB (data)".into(),
            wasm,
            config: "{}",
            like_jq: true,
        }),
        Err(why) => skipped.push(format!("Python, ~40 MB: {why}")),
    }
    for path in &args.extra {
        components.push(Component {
            name: path
                .file_name()
                .map_or("extra".into(), |n| n.to_string_lossy().into()),
            wasm: std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            config: "{}",
            like_jq: false,
        });
    }

    let program = JqProgram::compile(SLACK_IN_JQ).map_err(anyhow::Error::msg)?;
    let from_jq = program.run(envelope.val().clone())?;
    anyhow::ensure!(from_jq.len() == 1, "one message from jq");
    let jq_output = jq_to_json(&from_jq[0])?;
    let jq = measure(calls, || {
        program
            .run(envelope.val().clone())
            .map_or(0, |v| jq_to_json(&v[0]).map_or(0, |t| t.len()))
    });
    let serialise = measure(calls, || envelope.to_json().map_or(0, |j| j.len()));
    let mut measured = Vec::new();
    let chosen = |c: &&Component| {
        args.only
            .as_ref()
            .is_none_or(|o| c.name.contains(o.as_str()))
    };
    for c in components.iter().filter(chosen) {
        let m = measure_component(c, &envelope, calls)?;
        anyhow::ensure!(
            !c.like_jq || m.output == jq_output,
            "{} does not build jq's message:\n{}\n{}",
            c.name,
            String::from_utf8_lossy(&m.output),
            String::from_utf8_lossy(&jq_output)
        );
        measured.push(m);
    }

    println!(
        "per call: a {} byte event, {calls} calls each after {} warm-up calls; \
         a fresh instance per wasm call\n",
        body.len(),
        calls / 10
    );
    println!(
        "{:<30} {:>9} {:>9} {:>9} {:>8} {:>8}  {:>9} {:>10} {:>10}",
        "", "mean µs", "p50 µs", "p99 µs", "÷ jq", "faults", "size MiB", "upload s", "restart ms"
    );
    let row = |name: &str, s: &Stats| {
        format!(
            "{name:<30} {:>9.1} {:>9.1} {:>9.1} {:>7.2}× {:>8}",
            s.mean.as_secs_f64() * 1e6,
            s.p50.as_secs_f64() * 1e6,
            s.p99.as_secs_f64() * 1e6,
            s.p50.as_secs_f64() / jq.p50.as_secs_f64(),
            s.faults.map_or("—".into(), |f| format!("{f:.1}"))
        )
    };
    for m in &measured {
        println!(
            "{}  {:>9.1} {:>10.2} {:>10.1}",
            row(&m.name, &m.calls),
            m.size as f64 / f64::from(1 << 20),
            m.upload.as_secs_f64(),
            m.restart.as_secs_f64() * 1e3
        );
    }
    println!("{}", row("jq (benches/slack.jq)", &jq));
    println!("{}", row("  of which: envelope to JSON", &serialise));
    for s in &skipped {
        println!("{s}");
    }
    println!("\noutput bytes: jq {}", jq_output.len());
    for m in &measured {
        let same = match serde_json::from_slice::<serde_json::Value>(&m.output) {
            Ok(v) => serde_json::from_slice::<serde_json::Value>(&jq_output)
                .map(|j| {
                    if v == j {
                        "same message as jq"
                    } else {
                        "differs from jq"
                    }
                })
                .unwrap_or("?"),
            Err(_) => "not JSON",
        };
        println!("  {}: {} ({same})", m.name, m.output.len());
    }
    Ok(())
}
