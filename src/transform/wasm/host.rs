//! What a plugin instance sees of the host: the per-call store data, its memory cap, and where its
//! output goes.
//!
//! Every call gets a fresh [`HostState`]: an empty WASI context (no environment, arguments,
//! preopened directories or network; stdin is closed) whose stdout and stderr, like the
//! `host.log` import, become tracing events under target `hookgate::plugin` with the plugin's
//! name. Output is bounded per call so a chatty plugin cannot flood the gateway's log.

use super::bindings::hookgate::plugin::{host, types};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The tracing target of everything a plugin writes.
pub(super) const LOG_TARGET: &str = "hookgate::plugin";
/// Lines (from `host.log`, stdout and stderr together) a plugin may log per call.
const LINES_PER_CALL: u32 = 200;
/// Longer lines are cut here; a partial line is flushed when it reaches this size.
const LINE_MAX: usize = 4096;
/// How many stderr lines are kept to explain a trap (a Rust panic prints its message there).
const STDERR_TAIL: usize = 8;

/// The data of one call's `Store`.
pub(super) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) memory: MemoryCap,
    pub(super) log: Arc<LogSink>,
}

impl HostState {
    /// `keep`: also keep the call's log lines for the caller (`hookgate plugin test`).
    pub(super) fn new(plugin: &Arc<str>, memory_bytes: usize, keep: bool) -> HostState {
        let log = Arc::new(LogSink::new(plugin.clone(), keep));
        let mut wasi = WasiCtx::builder();
        wasi.stdout(LogStream {
            sink: log.clone(),
            stream: Stream::Stdout,
        })
        .stderr(LogStream {
            sink: log.clone(),
            stream: Stream::Stderr,
        })
        // These are already the defaults of wasmtime-wasi 48; saying so keeps an upgrade
        // from quietly granting network access.
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
        HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            memory: MemoryCap {
                max: memory_bytes,
                refused: false,
                peak: 0,
            },
            log,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: types::Level, message: String) {
        let level = match level {
            types::Level::Trace => tracing::Level::TRACE,
            types::Level::Debug => tracing::Level::DEBUG,
            types::Level::Info => tracing::Level::INFO,
            types::Level::Warn => tracing::Level::WARN,
            types::Level::Error => tracing::Level::ERROR,
        };
        for line in message.lines() {
            self.log.line(level, "log", line);
        }
    }
}

/// Caps the guest's linear memory and remembers a refused grow, so the trap a guest takes after
/// an allocation failure (a Rust guest aborts, which shows as `unreachable`) is reported as the
/// memory limit rather than as a bug in the plugin.
pub(super) struct MemoryCap {
    max: usize,
    pub(super) refused: bool,
    /// The largest linear memory the call had, in bytes.
    pub(super) peak: usize,
}

/// Table elements a plugin may grow to; far above what compiled Rust or C needs.
const TABLE_ELEMENTS_MAX: usize = 100_000;

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.refused = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_MAX)
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// One call's log output: complete lines become tracing events, within a per-call budget.
pub(super) struct LogSink {
    plugin: Arc<str>,
    state: Mutex<SinkState>,
}

/// A line a plugin logged, kept for the caller.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    pub(crate) level: tracing::Level,
    /// `log` (the host import), `stdout` or `stderr`.
    pub(crate) stream: &'static str,
    pub(crate) text: String,
}

#[derive(Default)]
struct SinkState {
    /// `Some` when the caller keeps the lines.
    kept: Option<Vec<LogLine>>,
    lines: u32,
    dropped: u32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stderr_tail: VecDeque<String>,
}

impl LogSink {
    fn new(plugin: Arc<str>, keep: bool) -> LogSink {
        LogSink {
            plugin,
            state: Mutex::new(SinkState {
                kept: keep.then(Vec::new),
                ..SinkState::default()
            }),
        }
    }

    /// The lines kept so far (none unless the sink was made to keep them).
    pub(super) fn kept(&self) -> Vec<LogLine> {
        self.state().kept.take().unwrap_or_default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SinkState> {
        // A panic while holding this lock leaves only log lines behind; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs one line, or counts it as dropped once the call's budget is spent.
    fn line(&self, level: tracing::Level, stream: &'static str, line: &str) {
        let mut state = self.state();
        if state.lines >= LINES_PER_CALL {
            state.dropped += 1;
            return;
        }
        state.lines += 1;
        let line = truncate(line, LINE_MAX);
        if let Some(kept) = &mut state.kept {
            kept.push(LogLine {
                level,
                stream,
                text: line.to_string(),
            });
        }
        drop(state);
        emit(level, &self.plugin, stream, line);
    }

    /// Appends guest bytes to a stream's pending line and logs every completed line.
    fn write(&self, stream: Stream, bytes: &[u8]) {
        let mut lines = Vec::new();
        {
            let mut state = self.state();
            let pending = match stream {
                Stream::Stdout => &mut state.stdout,
                Stream::Stderr => &mut state.stderr,
            };
            for &b in bytes {
                if b == b'\n' || pending.len() >= LINE_MAX {
                    lines.push(String::from_utf8_lossy(pending).into_owned());
                    pending.clear();
                }
                if b != b'\n' {
                    pending.push(b);
                }
            }
        }
        for line in lines {
            self.stream_line(stream, line);
        }
    }

    fn stream_line(&self, stream: Stream, line: String) {
        match stream {
            Stream::Stdout => self.line(tracing::Level::INFO, "stdout", &line),
            Stream::Stderr => {
                self.line(tracing::Level::WARN, "stderr", &line);
                let mut state = self.state();
                if state.stderr_tail.len() == STDERR_TAIL {
                    state.stderr_tail.pop_front();
                }
                state.stderr_tail.push_back(line);
            }
        }
    }

    /// Flushes unfinished lines, reports dropped ones, and returns the guest's panic message if
    /// stderr shows one.
    pub(super) fn finish(&self) -> Option<String> {
        let (stdout, stderr) = {
            let mut state = self.state();
            (
                std::mem::take(&mut state.stdout),
                std::mem::take(&mut state.stderr),
            )
        };
        for (stream, pending) in [(Stream::Stdout, stdout), (Stream::Stderr, stderr)] {
            if !pending.is_empty() {
                self.stream_line(stream, String::from_utf8_lossy(&pending).into_owned());
            }
        }
        let state = self.state();
        if state.dropped > 0 {
            let dropped = state.dropped;
            tracing::warn!(target: LOG_TARGET, plugin = %self.plugin, dropped, "plugin log lines dropped: over {LINES_PER_CALL} in one call");
        }
        panic_message(&state.stderr_tail)
    }
}

/// Rust's panic hook writes `thread '..' panicked at FILE:LINE:COL:` and then the message.
fn panic_message(tail: &VecDeque<String>) -> Option<String> {
    let at = tail.iter().position(|l| l.contains("panicked at"))?;
    tail.get(at + 1).map(|m| truncate(m, 512).to_string())
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// tracing needs the level at compile time, hence one call per level. Lines carry what plugins
/// print, often producer data: escaped, so they cannot forge lines of the text log.
fn emit(level: tracing::Level, plugin: &str, stream: &'static str, line: &str) {
    macro_rules! at {
        ($level:expr) => {
            tracing::event!(target: LOG_TARGET, $level, plugin, stream, "{}", crate::log_safe::Escaped(line))
        };
    }
    match level {
        tracing::Level::TRACE => at!(tracing::Level::TRACE),
        tracing::Level::DEBUG => at!(tracing::Level::DEBUG),
        tracing::Level::INFO => at!(tracing::Level::INFO),
        tracing::Level::WARN => at!(tracing::Level::WARN),
        _ => at!(tracing::Level::ERROR),
    }
}

/// The guest's stdout or stderr. It never fails and never blocks: bytes past the call's log
/// budget are discarded, so a guest that prints too much is not broken by it.
#[derive(Clone)]
struct LogStream {
    sink: Arc<LogSink>,
    stream: Stream,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.sink.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

/// Only WASIp3 uses this path (not linked here); it behaves like the p2 stream.
impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.sink.write(self.stream, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
