//! WebAssembly plugins: the wasmtime host behind the `transformer` world of `wit/hookgate.wit`.
//!
//! This module owns everything wasmtime: the [`Engine`] (compiler, pooling allocator, epoch
//! ticker, the linker of what plugins may import), loading a component into a [`Plugin`] (header
//! checks, world checks, the compile cache) and calling it under a deadline and a memory cap. No
//! other module imports wasmtime.
//!
//! It must never give a guest ambient authority: a plugin sees `hookgate:plugin/host` (logging)
//! and WASI 0.2 with an empty context — no environment, arguments, preopened directories,
//! sockets or stdin; its stdout and stderr become log lines. Clocks and random numbers are the
//! only host facts it can read. The module does no I/O itself except in the compile-cache
//! directory. Every call runs in a fresh instance, so nothing a plugin does survives its call.

mod cache;
mod host;
mod plugin;
pub(crate) mod registry;
#[cfg(test)]
#[path = "../../../tests/guests/build_guests.rs"]
mod testing;
#[cfg(test)]
mod tests;
mod ticker;

use super::Message;
use host::HostState;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use ticker::Ticker;
use wasmtime::component::{Component, HasSelf, Linker};

/// Generated from `wit/hookgate.wit`: `Transformer`, `TransformerPre` and the import traits.
mod bindings {
    wasmtime::component::bindgen!({ path: "wit", world: "transformer" });
}

use bindings::{Transformer, TransformerPre};
pub(crate) use host::LogLine;
use plugin::PluginInner;
pub(crate) use plugin::{Observed, Plugin};

/// The most messages one call may return.
pub(crate) const MAX_MESSAGES: usize = 1000;
/// The most bytes (bodies and headers) one call may return.
pub(crate) const MAX_OUTPUT_BYTES: usize = 16 << 20;
/// How often the epoch advances while a call runs: the resolution of the time limit.
const TICK: Duration = Duration::from_millis(5);

/// What every call of every plugin of an [`Engine`] may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time for one call, instantiation included.
    pub timeout: Duration,
    /// The plugin's linear memory, in bytes.
    pub memory_bytes: usize,
}

/// Why a plugin could not be loaded. The caller names the plugin (and its config key).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly binary")]
    NotWasm,
    #[error("a core module, not a component: build with --target wasm32-wasip2")]
    CoreModule,
    #[error("not a hookgate plugin: {0}")]
    WrongWorld(String),
    #[error("invalid component: {0}")]
    Compile(String),
    #[error("wasm engine: {0}")]
    Engine(String),
}

/// Why one call of a plugin produced no messages. Each message is one line naming the plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {plugin:?} exceeded its {ms} ms time limit")]
    Timeout { plugin: String, ms: u64 },
    #[error("plugin {plugin:?} exceeded its {mb} MiB memory limit")]
    Memory { plugin: String, mb: usize },
    #[error("plugin {plugin:?} trapped: {detail}")]
    Trap { plugin: String, detail: String },
    #[error("plugin {plugin:?} rejected the event: {why}")]
    Rejected { plugin: String, why: String },
    #[error("plugin {plugin:?} returned unusable output: {why}")]
    Output { plugin: String, why: String },
    /// The host could not start an instance (e.g. every pooled instance slot is busy).
    #[error("plugin {plugin:?} could not be started: {detail}")]
    Instantiate { plugin: String, detail: String },
}

/// The wasm runtime shared by every plugin. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    engine: wasmtime::Engine,
    linker: Linker<HostState>,
    limits: Limits,
    cache_dir: Option<PathBuf>,
    fingerprint: [u8; 8],
    /// Components compiled rather than loaded from the cache (for tests and metrics).
    compiles: AtomicU64,
    /// Declared last: it stops (and joins) the epoch thread once everything else is gone.
    ticker: Ticker,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("limits", &self.inner.limits)
            .field("cache_dir", &self.inner.cache_dir)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds the engine and its linker, starts the epoch ticker, and creates `cache_dir`.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Engine, LoadError> {
        let engine = wasmtime::Engine::new(&engine_config()).map_err(|e| {
            let mut why = format!("{e:#}");
            // The pool reserves ~4 TiB of address space up front (4 GiB + guard per memory slot,
            // 1000 slots): free on 64-bit Linux, unless RLIMIT_AS caps it.
            if why.contains("mmap") {
                why.push_str(" (is an address-space limit such as `ulimit -v` set?)");
            }
            LoadError::Engine(why)
        })?;
        let linker = linker(&engine).map_err(engine_error)?;
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                LoadError::Engine(format!(
                    "cannot create cache directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let ticker = Ticker::start(engine.clone())
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Engine {
            inner: Arc::new(EngineInner {
                fingerprint: cache::engine_fingerprint(&engine),
                engine,
                linker,
                limits,
                cache_dir,
                compiles: AtomicU64::new(0),
                ticker,
            }),
        })
    }

    /// Validates and compiles a plugin. Compiled code is cached in `cache_dir` as
    /// `<sha256>.cwasm`, so a restart does not recompile; a bad cache entry is recompiled.
    pub fn load(&self, name: &str, wasm: &[u8]) -> Result<Plugin, LoadError> {
        check_header(wasm)?;
        let sha256 = hex::encode(Sha256::digest(wasm));
        let component = self.compile(&sha256, wasm)?;
        let pre = self.instantiate_pre(&component)?;
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                name: name.into(),
                sha256,
                size: wasm.len(),
                pre,
                engine: self.clone(),
            }),
        })
    }

    /// How many components this engine compiled instead of loading them from the cache.
    #[cfg(test)]
    pub(crate) fn compilations(&self) -> u64 {
        self.inner.compiles.load(Ordering::Relaxed)
    }

    fn compile(&self, sha256: &str, wasm: &[u8]) -> Result<Component, LoadError> {
        let inner = &self.inner;
        let cached = inner.cache_dir.as_ref().map(|dir| cache::path(dir, sha256));
        if let Some(path) = &cached
            && let Some(component) = cache::read(&inner.engine, inner.fingerprint, path)
        {
            return Ok(component);
        }
        inner.compiles.fetch_add(1, Ordering::Relaxed);
        let component = Component::new(&inner.engine, wasm)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        if let Some(path) = &cached {
            cache::write(&component, inner.fingerprint, path);
        }
        Ok(component)
    }

    /// Checks the component against the `transformer` world: it must export `transform` with
    /// the right type and import nothing the linker does not offer. Reports every problem.
    fn instantiate_pre(
        &self,
        component: &Component,
    ) -> Result<TransformerPre<HostState>, LoadError> {
        let engine = &self.inner.engine;
        let ty = component.component_type();
        let mut problems = Vec::new();
        if ty.get_export(engine, "transform").is_none() {
            let exports: Vec<_> = ty
                .exports(engine)
                .map(|(name, _)| format!("`{name}`"))
                .collect();
            let exports = if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            };
            problems.push(format!(
                "it does not export `transform` (it exports {exports})"
            ));
        }
        let pre = self
            .inner
            .linker
            .instantiate_pre(component)
            .map_err(|e| problems.push(unoffered_import(&e)));
        let pre = match pre {
            Ok(pre) if problems.is_empty() => pre,
            _ => {
                problems.push("build it against wit/hookgate.wit, world `transformer`".into());
                return Err(LoadError::WrongWorld(problems.join("; ")));
            }
        };
        TransformerPre::new(pre).map_err(|e| {
            LoadError::WrongWorld(format!("its `transform` export has the wrong type: {e:#}"))
        })
    }
}

/// wasmtime says "component imports instance `NAME`, but a matching implementation was not
/// found in the linker"; the user needs NAME.
fn unoffered_import(error: &wasmtime::Error) -> String {
    let message = error.to_string();
    match message.split('`').nth(1) {
        Some(name) => format!("it imports `{name}`, which hookgate does not offer"),
        None => format!("it imports what hookgate does not offer: {message}"),
    }
}

fn engine_error(e: wasmtime::Error) -> LoadError {
    LoadError::Engine(format!("{e:#}"))
}

fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .profiler(profiler())
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool_config()));
    config
}

/// `HOOKGATE_WASM_PERFMAP=1` writes `/tmp/perf-<pid>.map`, so `perf report` names the guest's
/// functions (how BENCHMARKS.md's profiles of plugin calls were taken). Off otherwise: the map
/// grows with every compiled plugin.
fn profiler() -> wasmtime::ProfilingStrategy {
    match std::env::var_os("HOOKGATE_WASM_PERFMAP") {
        Some(v) if v == "1" => wasmtime::ProfilingStrategy::PerfMap,
        _ => wasmtime::ProfilingStrategy::None,
    }
}

/// Page faults the calling thread has taken so far (`minflt`, the 10th field of
/// `/proc/thread-self/stat`), or `None` where `/proc` does not say: what a call's memory costs
/// when its pages are not kept resident between calls (the plugin benchmark, the reset's test).
pub fn thread_page_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(7)?.parse().ok()
}

/// Instance slots are reused across calls, which makes a fresh instance per call cheap: up to
/// 1000 instances at once (the default), each memory slot's address space reserved up front.
fn pool_config() -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool
        // Reset the low memory a plugin dirtied with memset instead of madvise, and keep it
        // resident: the next call in the slot takes no page faults there. With PAGEMAP_SCAN
        // (Linux 6.7+) only the dirtied pages are reset, however scattered (the vendored
        // wasmtime's patch, vendor/README.md: Python 1.33 -> 0.69 ms a call). Measured here:
        // 31 -> 12 µs per trivial call, 96 -> 52 µs for a 2 KB serde_json call. Older kernels
        // memset the whole region.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(64 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto)
        // Bounds what idle slots keep resident to about WARM_SLOTS x KEEP_RESIDENT.
        .max_unused_warm_slots(WARM_SLOTS);
    pool
}

/// Bytes of each memory slot kept resident between calls (see [`pool_config`]).
const KEEP_RESIDENT: usize = 4 << 20;
/// Idle instance slots kept ready; more than the calls that run at once on a small host.
const WARM_SLOTS: u32 = 16;

/// What a plugin may import: `hookgate:plugin/host` and the WASI 0.2 interfaces (empty context).
fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    Transformer::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;
    Ok(linker)
}

/// `\0asm` then the version: 1 for a core module, `0d 00 01 00` for a component.
fn check_header(wasm: &[u8]) -> Result<(), LoadError> {
    match wasm.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0x00, 0x01, 0x00]) => Ok(()),
        Some([0, b'a', b's', b'm', 0x01, 0x00, 0x00, 0x00]) => Err(LoadError::CoreModule),
        Some([0, b'a', b's', b'm', version @ ..]) => Err(LoadError::Compile(format!(
            "unsupported WebAssembly version {version:02x?}"
        ))),
        _ => Err(LoadError::NotWasm),
    }
}
