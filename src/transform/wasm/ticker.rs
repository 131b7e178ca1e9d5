//! The epoch thread: it advances an engine's epoch every [`TICK`] while a call runs, which is
//! how a call's deadline interrupts a plugin that loops.
//!
//! It ticks only while at least one call holds a [`Running`]: an idle gateway (most have no
//! plugin, and the engine exists anyway, for uploads) would otherwise wake this thread 200 times
//! a second, five in six of all an idle gateway's wake-ups. Between calls it parks. A call's
//! deadline counts ticks from its start, so ticks missed while parked cannot shorten one.
//!
//! It must never block a call: starting and ending one are an atomic add, and an unpark of the
//! thread when the count leaves zero.

use super::TICK;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// Owns the epoch thread: dropping it stops and joins the thread.
pub(super) struct Ticker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    /// Calls running now.
    calls: AtomicUsize,
    stop: AtomicBool,
    /// Epochs advanced so far (tests read it).
    ticks: AtomicU64,
}

/// A call in progress: the epoch advances while any is alive.
pub(super) struct Running<'t> {
    ticker: &'t Ticker,
}

impl Ticker {
    pub(super) fn start(engine: wasmtime::Engine) -> std::io::Result<Ticker> {
        let shared = Arc::new(Shared {
            calls: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
        });
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || tick(&engine, &state))?;
        Ok(Ticker {
            shared,
            thread: Some(thread),
        })
    }

    /// Marks a call as running until the guard drops; wakes the thread if it was parked.
    pub(super) fn running(&self) -> Running<'_> {
        if self.shared.calls.fetch_add(1, Ordering::AcqRel) == 0 {
            self.unpark();
        }
        Running { ticker: self }
    }

    #[cfg(test)]
    pub(super) fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Acquire)
    }

    fn unpark(&self) {
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.ticker.shared.calls.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.unpark();
        if let Some(thread) = self.thread.take() {
            // The thread cannot panic; if it somehow did, there is nothing left to clean up.
            let _ = thread.join();
        }
    }
}

/// The thread's loop. An unpark that comes before the park it is meant for makes that park
/// return at once (a thread's one token), so a call that starts while the thread is about to park
/// is never missed.
fn tick(engine: &wasmtime::Engine, shared: &Shared) {
    while !shared.stop.load(Ordering::Acquire) {
        if shared.calls.load(Ordering::Acquire) == 0 {
            std::thread::park();
            continue;
        }
        // A sleep, not a timed park: an unpark must not bring the next tick forward.
        std::thread::sleep(TICK);
        engine.increment_epoch();
        shared.ticks.fetch_add(1, Ordering::AcqRel);
    }
}
