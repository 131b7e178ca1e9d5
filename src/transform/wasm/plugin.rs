//! One loaded plugin and one call of it: a fresh store and instance under the engine's limits,
//! failures mapped to [`PluginError`], output checked before it becomes [`Message`]s.

use super::bindings::{self, TransformerPre};
use super::host::HostState;
use super::{Engine, MAX_MESSAGES, MAX_OUTPUT_BYTES, Message, PluginError, TICK};
use std::sync::Arc;
use std::time::Duration;

/// One call, observed: its result, its log lines, its wall time (instantiation included) and the
/// largest linear memory it had.
#[derive(Debug)]
pub(crate) struct Observed {
    pub(crate) result: Result<Vec<Message>, PluginError>,
    pub(crate) logs: Vec<super::LogLine>,
    pub(crate) elapsed: std::time::Duration,
    pub(crate) peak_memory: usize,
}

/// A loaded plugin. Cheap to clone; `Send + Sync`. Keeps its [`Engine`] alive.
#[derive(Clone)]
pub struct Plugin {
    pub(super) inner: Arc<PluginInner>,
}

pub(super) struct PluginInner {
    pub(super) name: Arc<str>,
    pub(super) sha256: String,
    pub(super) size: usize,
    pub(super) pre: TransformerPre<HostState>,
    pub(super) engine: Engine,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.name)
            .field("sha256", &self.inner.sha256)
            .field("size", &self.inner.size)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn name(&self) -> &str {
        &self.inner.name
    }

    /// The SHA-256 of the component's bytes, lower-case hex.
    pub(crate) fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// The component's size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.inner.size
    }

    /// Runs `transform` in a fresh instance under the engine's limits. Blocking: the caller runs
    /// it on a blocking thread.
    pub fn call(&self, event_json: &str, config_json: &str) -> Result<Vec<Message>, PluginError> {
        self.run(event_json, config_json, false).result
    }

    /// [`Plugin::call`], also returning what the call logged, its time and its peak memory
    /// (`hookgate plugin test`).
    pub(crate) fn call_observed(&self, event_json: &str, config_json: &str) -> Observed {
        self.run(event_json, config_json, true)
    }

    fn run(&self, event_json: &str, config_json: &str, keep_logs: bool) -> Observed {
        let started = std::time::Instant::now();
        // Before the deadline is set: the epoch stands still while no call runs.
        let _running = self.inner.engine.inner.ticker.running();
        let limits = self.inner.engine.inner.limits;
        let mut store = wasmtime::Store::new(
            &self.inner.engine.inner.engine,
            HostState::new(&self.inner.name, limits.memory_bytes, keep_logs),
        );
        store.limiter(|state| &mut state.memory);
        // The deadline counts whole ticks from now, and the next tick may come at once: one
        // extra tick makes sure the plugin gets at least its full time.
        store.set_epoch_deadline(deadline_ticks(limits.timeout));
        store.epoch_deadline_trap();
        let result = self
            .inner
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.call_transform(&mut store, event_json, config_json));
        let memory_refused = store.data().memory.refused;
        let peak_memory = store.data().memory.peak;
        let panic = store.data().log.finish();
        let logs = store.data().log.kept();
        // Give the instance slot back to the pool before converting the output.
        drop(store);
        let elapsed = started.elapsed();
        let result = match result {
            Ok(Ok(messages)) => self.messages(messages),
            // A guest that catches its failed allocation (CPython's MemoryError) and refuses the
            // event still hit the cap: that is the cause to report.
            Ok(Err(_)) if memory_refused => Err(PluginError::Memory {
                plugin: self.name().into(),
                mb: limits.memory_bytes >> 20,
            }),
            Ok(Err(why)) => Err(PluginError::Rejected {
                plugin: self.name().into(),
                why,
            }),
            Err(error) => Err(self.failure(&error, memory_refused, panic)),
        };
        Observed {
            result,
            logs,
            elapsed,
            peak_memory,
        }
    }

    fn failure(
        &self,
        error: &wasmtime::Error,
        memory_refused: bool,
        panic: Option<String>,
    ) -> PluginError {
        let plugin = self.name().to_string();
        let limits = self.inner.engine.inner.limits;
        let trap = error.downcast_ref::<wasmtime::Trap>();
        if trap == Some(&wasmtime::Trap::Interrupt) {
            let ms = u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX);
            return PluginError::Timeout { plugin, ms };
        }
        if memory_refused {
            return PluginError::Memory {
                plugin,
                mb: limits.memory_bytes >> 20,
            };
        }
        match trap {
            Some(trap) => {
                let detail = match panic {
                    Some(message) => format!("{trap} (the plugin panicked: {message})"),
                    None => trap.to_string(),
                };
                PluginError::Trap { plugin, detail }
            }
            None => PluginError::Instantiate {
                plugin,
                detail: one_line(error),
            },
        }
    }

    fn messages(
        &self,
        messages: Vec<bindings::hookgate::plugin::types::Message>,
    ) -> Result<Vec<Message>, PluginError> {
        let output = |why: String| PluginError::Output {
            plugin: self.name().into(),
            why,
        };
        if messages.len() > MAX_MESSAGES {
            return Err(output(format!(
                "{} messages; the limit is {MAX_MESSAGES}",
                messages.len()
            )));
        }
        let mut total = 0;
        for (i, m) in messages.iter().enumerate() {
            total += m.body.len();
            for (name, value) in &m.headers {
                total += name.len() + value.len();
                if !valid_header(name, value) {
                    return Err(output(format!(
                        "message {i} has an invalid header {name:?}"
                    )));
                }
            }
        }
        if total > MAX_OUTPUT_BYTES {
            return Err(output(format!(
                "{:.1} MiB of messages; the limit is {} MiB",
                total as f64 / (1 << 20) as f64,
                MAX_OUTPUT_BYTES >> 20
            )));
        }
        Ok(messages
            .into_iter()
            .map(|m| Message {
                body: m.body.into(),
                headers: m.headers,
                target: m.target,
            })
            .collect())
    }
}

pub(super) fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_nanos().div_ceil(TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX - 1) + 1
}

/// An HTTP header the deliver stage can send as is: a token name, a value without control
/// characters (CR and LF would let a plugin inject headers).
pub(super) fn valid_header(name: &str, value: &str) -> bool {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !name.is_empty()
        && name.bytes().all(token)
        && value
            .bytes()
            .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// wasmtime errors can carry a multi-line backtrace; an error message here is one line.
fn one_line(error: &wasmtime::Error) -> String {
    format!("{error:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}
