//! Delivery: the only code that makes outbound requests.
//!
//! The worker takes fresh deliveries the route loop hands over in memory ([`handoff`]) and claims
//! due ones (retries, and whatever was not handed over) from the store under a lease, ahead of its
//! free permits and without waiting for the claim ([`claim`]); it sends each
//! with its target's signing and timeout ([`client`], over [`direct`]), records the attempt, and lets the
//! [`retry`] policy decide what happens next. Each target has its own concurrency limit, so a slow target fills only its
//! own slots and never starves the others; ingress never waits on any of it.

pub(crate) mod bounds;
pub(crate) mod breaker;
pub(crate) mod claim;
pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod direct;
pub(crate) mod gate;
pub(crate) mod handoff;
pub(crate) mod port;
pub(crate) mod retry;
pub(crate) mod sign;
pub(crate) mod switch;
pub(crate) mod unrecorded;

pub(crate) use gate::Gates;
pub(crate) use switch::TargetSwitch;

use crate::Clock;
use crate::config::Config;
use crate::deliver::config::Target;
use crate::metrics::{AttemptResult, Metrics};
use crate::store::{AfterAttempt, Attempt, DueDelivery, Store};
use handoff::{Handed, Queues};
use retry::Verdict;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

/// Longest the worker sleeps without looking at the store. Commits wake it sooner; this is the
/// safety net for work it was not told about.
const MAX_IDLE: Duration = Duration::from_secs(5);

/// What every attempt needs besides its target: shared handles, cheap to clone.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) client: client::Http,
    pub(crate) clock: Clock,
    pub(crate) switch: TargetSwitch,
    pub(crate) gates: Gates,
    pub(crate) metrics: Arc<Metrics>,
}

struct Slot {
    target: Arc<Target>,
    permits: Arc<Semaphore>,
}

/// The delivery worker of one gateway process.
pub(crate) struct Worker {
    ctx: Context,
    config: watch::Receiver<Arc<Config>>,
    slots: BTreeMap<String, Slot>,
    capacity: Arc<Notify>,
    /// Deliveries the route loop handed over.
    handed: Queues,
}

impl Worker {
    pub(crate) fn new(
        ctx: Context,
        mut config: watch::Receiver<Arc<Config>>,
        handed: Queues,
    ) -> Self {
        let current = config.borrow_and_update().clone();
        let mut worker = Self {
            ctx,
            config,
            slots: BTreeMap::new(),
            capacity: Arc::new(Notify::new()),
            handed,
        };
        worker.apply(&current.targets);
        worker
    }

    /// Rebuilds the target slots from a (re)loaded config. A target whose concurrency is unchanged
    /// keeps its semaphore, so attempts in flight keep counting against it; a removed target's
    /// deliveries stay pending in the store until a config names it again.
    fn apply(&mut self, targets: &BTreeMap<String, Arc<Target>>) {
        let mut old = std::mem::take(&mut self.slots);
        for (name, t) in targets {
            let permits = match old.remove(name) {
                Some(s) if s.target.concurrency == t.concurrency => s.permits,
                _ => Arc::new(Semaphore::new(t.concurrency)),
            };
            let target = t.clone();
            self.slots.insert(name.clone(), Slot { target, permits });
        }
        self.ctx.gates.configure(targets, self.ctx.clock.now_ms());
    }

    /// Runs until `shutdown` turns true, then waits for attempts in flight (up to `grace`).
    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>, grace: Duration) {
        let signals = self.ctx.store.signals();
        let mut in_flight = JoinSet::new();
        // Whether a claim may find work in the store (at start: what a previous run left), and
        // when to look anyway (the next due time the store knows of).
        let mut look_in_store = true;
        let mut next_look = tokio::time::Instant::now();
        let mut claims = claim::Claims::default();
        while !*shutdown.borrow() {
            if self.config.has_changed().unwrap_or(false) {
                let current = self.config.borrow_and_update().clone();
                self.apply(&current.targets);
            }
            if let Some(claimed) = claims.finished().await {
                look_in_store = claimed > 0;
                if !look_in_store {
                    next_look = tokio::time::Instant::now() + self.idle_wait().await;
                }
            }
            self.handed.collect();
            let started = self.dispatch_handed(&mut in_flight).await;
            if claims.idle() && (look_in_store || tokio::time::Instant::now() >= next_look) {
                let start = claims.start(
                    &self.ctx,
                    self.slots.values().map(|s| &s.target),
                    self.handed.sender(),
                    self.capacity.clone(),
                );
                if start != claim::Start::Started {
                    // Without a new `next_look` the sleep below would end at once and this loop
                    // would spin, say while a breaker stays open. No target that can send has
                    // room, so the store's due times do not matter, only when a gate opens; and
                    // short of room, an attempt that ends wakes this loop to look again.
                    look_in_store = start == claim::Start::NoRoom;
                    let now = self.ctx.clock.now_ms();
                    next_look =
                        tokio::time::Instant::now() + wait_until(now, self.ctx.gates.wake_at(now));
                }
            }
            while in_flight.try_join_next().is_some() {}
            if started > 0 {
                continue;
            }
            tokio::select! {
                _ = signals.deliveries.notified() => look_in_store = true,
                _ = self.capacity.notified() => {}
                _ = self.handed.recv() => {}
                _ = self.config.changed() => {}
                _ = tokio::time::sleep_until(next_look) => {}
                _ = shutdown.changed() => {}
            }
        }
        let drained = tokio::time::timeout(grace, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = in_flight.len(),
                "shutdown grace ended with attempts in flight; they will be retried"
            );
        }
    }

    /// Starts attempts of handed-over deliveries while their targets have room. Those that cannot
    /// go (target disabled, breaker open, removed by a reload, or a lease that would end during
    /// the attempt) are given back to the store, where a claim takes them later.
    async fn dispatch_handed(&mut self, in_flight: &mut JoinSet<()>) -> usize {
        let mut give_back = self.handed.take_orphans(&self.slots);
        let mut started = 0;
        for (name, slot) in &self.slots {
            if !self.handed.has(name) {
                continue;
            }
            let now = self.ctx.clock.now_ms();
            let admitted = self.ctx.gates.admits(name, now);
            if self.ctx.switch.is_disabled(name) || admitted == Some(0) {
                give_back.extend(self.handed.take(name, usize::MAX));
                continue;
            }
            let free = slot
                .permits
                .available_permits()
                .min(admitted.unwrap_or(usize::MAX));
            let timeout = crate::duration_ms(slot.target.timeout);
            let mut n = 0;
            for h in self.handed.take(name, free) {
                if now.saturating_add(timeout) >= h.lease_until {
                    give_back.push(h);
                    continue;
                }
                let Ok(permit) = slot.permits.clone().try_acquire_owned() else {
                    give_back.push(h);
                    continue;
                };
                n += 1;
                self.spawn(in_flight, slot, permit, h);
            }
            self.ctx.gates.claimed(name, n, now);
            started += n;
        }
        // Unrecorded ones have no row and no lease yet: dropped, their shares settle without an
        // attempt, and they are recorded pending for a claim.
        give_back.retain(|h| h.share.is_none());
        if !give_back.is_empty() {
            let ids = give_back.iter().map(|h| h.delivery.id.clone()).collect();
            if let Err(e) = self.ctx.store.release_leases(ids).await {
                // Their leases run out instead, and a claim takes them then.
                tracing::warn!(error = %e, "cannot give back handed-over deliveries");
            }
        }
        started
    }

    fn spawn(
        &self,
        in_flight: &mut JoinSet<()>,
        slot: &Slot,
        permit: tokio::sync::OwnedSemaphorePermit,
        job: Handed,
    ) {
        let task = AttemptTask {
            ctx: self.ctx.clone(),
            target: slot.target.clone(),
        };
        let capacity = self.capacity.clone();
        // Boxed: the attempt's future (hyper's request inside a timeout) is large, and a task
        // holding it inline was copied whole into its cell at spawn and again as it finished
        // (`memmove` under `spawn` and `set_stage`: 2 % of the runtime's CPU under load).
        in_flight.spawn(Box::pin(async move {
            let mut job = job;
            let store = task.ctx.store.clone();
            let attempt = task.run(&job.delivery).await;
            match job.share.take() {
                Some(share) => share.attempted(attempt),
                None => {
                    let id = job.delivery.id.clone();
                    if let Err(e) = store.record_attempt(attempt).await {
                        // The lease runs out and the delivery is attempted again: at least once,
                        // never lost.
                        tracing::error!(delivery = %id, error = %e, "cannot record attempt");
                    }
                }
            }
            // The permit and the delivery's room are freed once the attempt is recorded (or
            // handed to the routing's recorder), and only then is the worker woken to use them.
            drop((job, permit));
            capacity.notify_one();
        }));
    }

    /// Targets whose deliveries may be claimed at all: not disabled, and the breaker not open.
    fn open_targets(&self, now: i64) -> Vec<String> {
        self.slots
            .keys()
            .filter(|name| !self.ctx.switch.is_disabled(name))
            .filter(|name| self.ctx.gates.admits(name, now) != Some(0))
            .cloned()
            .collect()
    }

    /// How long to sleep when nothing was claimed: until the next due delivery of a target that
    /// can take it, or until a breaker or rate limit lets one through, within bounds.
    async fn idle_wait(&self) -> Duration {
        let now = self.ctx.clock.now_ms();
        let due = match self
            .ctx
            .store
            .next_due_at(now, self.open_targets(now))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read next due delivery");
                None
            }
        };
        let wake = due.into_iter().chain(self.ctx.gates.wake_at(now)).min();
        wait_until(now, wake)
    }
}

/// How long to sleep until `wake` (ms since the epoch), within bounds. One that is already due
/// but could not be claimed (its target is saturated) waits for capacity, briefly.
fn wait_until(now: i64, wake: Option<i64>) -> Duration {
    match wake {
        Some(at) if at <= now => Duration::from_millis(20),
        Some(at) => Duration::from_millis((at - now) as u64).min(MAX_IDLE),
        None => MAX_IDLE,
    }
}

struct AttemptTask {
    ctx: Context,
    target: Arc<Target>,
}

impl AttemptTask {
    /// Makes the attempt and says what the log should keep of it (the caller records it).
    async fn run(self, d: &DueDelivery) -> Attempt {
        let attempt = d.attempts + 1;
        let started_at = self.ctx.clock.now_ms();
        let timer = Instant::now();
        let sent = client::send(&self.ctx.client, &self.target, d, attempt).await;
        let duration = timer.elapsed();
        let verdict = self.target.retry.verdict(
            attempt,
            sent.result,
            sent.retry_after,
            rand::random::<f64>(),
        );
        let gone = sent.status_code == Some(410);
        if gone {
            self.pause_gone().await;
        }
        let now = self.ctx.clock.now_ms();
        let after = match verdict {
            _ if gone => AfterAttempt::RetryAt(now),
            Verdict::Success => AfterAttempt::Succeeded,
            Verdict::RetryAfter(wait) => {
                AfterAttempt::RetryAt(now.saturating_add(crate::duration_ms(wait)))
            }
            Verdict::GiveUp => AfterAttempt::Failed,
            Verdict::Exhausted => AfterAttempt::Dead,
        };
        if after != AfterAttempt::Succeeded {
            tracing::warn!(delivery = %d.id, target = %self.target.name, attempt, status = ?sent.status_code,
                error = sent.error.as_deref().unwrap_or(""), outcome = ?after, "delivery attempt failed");
        }
        // Only answers that say the target is unwell count against its breaker, not a 4xx about
        // one payload.
        let healthy = !matches!(verdict, Verdict::RetryAfter(_) | Verdict::Exhausted);
        if self.ctx.gates.record(&self.target.name, healthy, now) {
            self.ctx.metrics.breaker_opened(&self.target.name);
            tracing::warn!(target = %self.target.name, "circuit breaker opened: deliveries wait for the cool-down");
        }
        self.count(d, attempt, after, gone, duration, now);
        Attempt {
            delivery_id: d.id.clone(),
            attempt,
            started_at,
            duration_ms: duration.as_millis() as i64,
            status_code: sent.status_code,
            error: sent.error,
            response_headers: sent.response_headers,
            response_body: sent.response_body,
            after,
            finished_at: now,
        }
    }

    /// 410 Gone means "stop sending here" (Standard Webhooks): pause the target, keep the delivery.
    async fn pause_gone(&self) {
        let name = &self.target.name;
        let reason = "target answered 410 Gone";
        if let Err(e) = self
            .ctx
            .switch
            .disable(&*self.ctx.store, name, reason)
            .await
        {
            tracing::error!(target = %name, error = %e, "cannot disable target");
        }
        tracing::warn!(target = %name, "target answered 410 Gone: disabled until enabled again");
    }

    fn count(
        &self,
        d: &DueDelivery,
        attempt: u32,
        after: AfterAttempt,
        gone: bool,
        duration: Duration,
        now: i64,
    ) {
        let (result, outcome) = match after {
            _ if gone => (AttemptResult::Paused, None),
            AfterAttempt::Succeeded => (AttemptResult::Success, Some("succeeded")),
            AfterAttempt::RetryAt(_) => (AttemptResult::Retry, None),
            AfterAttempt::Failed => (AttemptResult::Failed, Some("failed")),
            AfterAttempt::Dead => (AttemptResult::Dead, Some("dead")),
        };
        let latency = (result == AttemptResult::Success)
            .then(|| Duration::from_millis((now - d.created_at).max(0) as u64));
        let name = &self.target.name;
        self.ctx
            .metrics
            .attempt(name, attempt, result, duration, latency);
        if let Some(outcome) = outcome {
            self.ctx.metrics.delivery_finished(name, outcome);
        }
    }
}
