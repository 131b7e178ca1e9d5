//! `hookgate plugin test FILE.wasm --event FIXTURE.json`: one call of a plugin, offline, under the
//! gateway's limits (the same engine, linker and per-call caps the route stage uses), printing
//! the messages, what the plugin logged, the call's time and its peak memory.
//!
//! The fixture is a producer's body, wrapped into the envelope the gateway would build for it
//! (`--preset` names the event type as that preset does, `--header` adds request headers), or an
//! envelope already (`{id, source, event_type, received_at, headers, queryParams, body}`), passed
//! as is. Nothing is stored or sent.

use crate::route::envelope::{BodyFormat, Envelope, EventTypeRule};
use crate::store::StoredEvent;
use crate::transform::wasm::{Engine, Limits, Observed};
use anyhow::{Context as _, bail};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// What `plugin test` was asked.
#[derive(Debug, Clone)]
pub(crate) struct TestArgs {
    pub(crate) file: PathBuf,
    pub(crate) event: PathBuf,
    pub(crate) config: String,
    pub(crate) preset: String,
    pub(crate) source: Option<String>,
    pub(crate) headers: Vec<String>,
    pub(crate) timeout_ms: u64,
    pub(crate) memory_mb: u64,
    pub(crate) json: bool,
    /// Where compiled code is cached (`--plugin-cache`); `None` compiles without a cache.
    pub(crate) cache: Option<PathBuf>,
}

/// Runs the call; `Ok(false)` when the plugin failed (the output says why).
pub(crate) fn run(args: &TestArgs) -> anyhow::Result<(String, bool)> {
    let wasm =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let config: serde_json::Value = serde_json::from_str(&args.config)
        .with_context(|| format!("--config is not JSON: {}", args.config))?;
    let envelope = envelope(args)?;
    let limits = Limits {
        timeout: Duration::from_millis(args.timeout_ms),
        memory_bytes: usize::try_from(args.memory_mb << 20).context("--memory-mb")?,
    };
    let engine =
        Engine::new(limits, args.cache.clone()).map_err(|e| anyhow::anyhow!("wasm engine: {e}"))?;
    let name = args
        .file
        .file_stem()
        .map_or("plugin".into(), |s| s.to_string_lossy().into_owned());
    let plugin = engine
        .load(&name, &wasm)
        .map_err(|e| anyhow::anyhow!("{} cannot be loaded: {e}", args.file.display()))?;
    let observed = plugin.call_observed(&envelope, &config.to_string());
    let ok = observed.result.is_ok();
    let out = match args.json {
        true => json_report(&observed)?,
        false => text_report(&name, &observed, limits),
    };
    Ok((out, ok))
}

/// The envelope the plugin gets, as JSON text.
fn envelope(args: &TestArgs) -> anyhow::Result<String> {
    let body =
        std::fs::read(&args.event).with_context(|| format!("reading {}", args.event.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .with_context(|| format!("{} is not JSON", args.event.display()))?;
    let is_envelope = ["id", "source", "headers", "body"]
        .iter()
        .all(|k| value.get(k).is_some());
    if is_envelope {
        return Ok(String::from_utf8_lossy(&body).into_owned());
    }
    let Some(kind) = crate::ingress::config::SourceKind::from_name(&args.preset) else {
        let names: Vec<&str> = crate::ingress::config::SourceKind::ALL
            .iter()
            .map(|k| k.name())
            .collect();
        bail!(
            "unknown preset `{}` (one of {})",
            args.preset,
            names.join(", ")
        );
    };
    let mut headers = Vec::new();
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            bail!("--header {h:?}: expected `Name: value`");
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let event = StoredEvent {
        id: crate::route::new_event_id(),
        source: args.source.clone().unwrap_or_else(|| args.preset.clone()),
        received_at: crate::now_ms(),
        headers,
        query: Vec::new(),
        body: body.into(),
        replays: 0,
    };
    let rule: EventTypeRule = kind.event_type_rule();
    let envelope = Envelope::build(&event, BodyFormat::Json, &rule)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.event.display()))?;
    Ok(envelope.to_json()?)
}

fn text_report(name: &str, o: &Observed, limits: Limits) -> String {
    let mut out = String::new();
    let time = format!("{:.2} ms", o.elapsed.as_secs_f64() * 1e3);
    let memory = format!("{:.1} MiB", o.peak_memory as f64 / f64::from(1 << 20));
    let caps = format!(
        "limits {} ms, {} MiB",
        limits.timeout.as_millis(),
        limits.memory_bytes >> 20
    );
    match &o.result {
        Ok(messages) => {
            let _ = writeln!(
                out,
                "{name}: {} message(s) in {time}, peak memory {memory} ({caps})",
                messages.len()
            );
            for (i, m) in messages.iter().enumerate() {
                let to = m
                    .target
                    .as_deref()
                    .map_or("every target of the route".into(), |t| {
                        format!("target `{t}`")
                    });
                let _ = writeln!(out, "\nmessage {} (to {to})", i + 1);
                for (k, v) in &m.headers {
                    let _ = writeln!(out, "  {k}: {v}");
                }
                let _ = writeln!(out, "  {}", String::from_utf8_lossy(&m.body));
            }
            if messages.is_empty() {
                let _ = writeln!(out, "\nno messages: the route would be `filtered`");
            }
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "{name}: failed in {time}, peak memory {memory} ({caps})"
            );
            let _ = writeln!(out, "\n{e}");
        }
    }
    if !o.logs.is_empty() {
        let _ = writeln!(out, "\nlogs:");
        for l in &o.logs {
            let _ = writeln!(out, "  {:<5} {:<6} {}", l.level, l.stream, l.text);
        }
    }
    out
}

fn json_report(o: &Observed) -> anyhow::Result<String> {
    let messages: Vec<serde_json::Value> = o
        .result
        .as_ref()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    serde_json::json!({
                        "body": String::from_utf8_lossy(&m.body),
                        "headers": m.headers,
                        "target": m.target,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let logs: Vec<serde_json::Value> = o
        .logs
        .iter()
        .map(|l| serde_json::json!({"level": l.level.as_str(), "stream": l.stream, "text": l.text}))
        .collect();
    let report = serde_json::json!({
        "ok": o.result.is_ok(),
        "error": o.result.as_ref().err().map(ToString::to_string),
        "messages": messages,
        "logs": logs,
        "elapsed_us": o.elapsed.as_micros(),
        "peak_memory_bytes": o.peak_memory,
    });
    Ok(serde_json::to_string_pretty(&report)? + "\n")
}
