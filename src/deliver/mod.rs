//! Delivery: the only code that makes outbound requests.
//!
//! The worker claims due deliveries from the store under a lease, sends each with its target's
//! signing and timeout ([`client`]), records the attempt, and lets the [`retry`] policy decide
//! what happens next. Each target has its own concurrency limit, so a slow target fills only its
//! own slots and never starves the others; ingress never waits on any of it.

pub mod client;
pub mod retry;
pub mod switch;

pub use switch::TargetSwitch;

use crate::Clock;
use crate::config::Target;
use crate::store::{AfterAttempt, Attempt, DueDelivery, Store};
use retry::Verdict;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

/// Longest the worker sleeps without looking at the store. Commits wake it sooner; this is the
/// safety net for work it was not told about.
const MAX_IDLE: Duration = Duration::from_secs(5);
/// Most deliveries claimed for one target in one go.
const MAX_CLAIM: usize = 256;

struct Slot {
    target: Arc<Target>,
    permits: Arc<Semaphore>,
}

/// The delivery worker of one gateway process.
pub struct Worker {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    slots: BTreeMap<String, Slot>,
    capacity: Arc<Notify>,
    clock: Clock,
    switch: TargetSwitch,
}

/// The HTTP client every delivery shares: pooled keep-alive connections per target host.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("hookgate/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(256)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        client: reqwest::Client,
        targets: &BTreeMap<String, Arc<Target>>,
        clock: Clock,
        switch: TargetSwitch,
    ) -> Self {
        let slots = targets
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    Slot {
                        target: t.clone(),
                        permits: Arc::new(Semaphore::new(t.concurrency)),
                    },
                )
            })
            .collect();
        Self {
            store,
            client,
            slots,
            capacity: Arc::new(Notify::new()),
            clock,
            switch,
        }
    }

    /// Runs until `shutdown` turns true, then waits for attempts in flight (up to `grace`).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>, grace: Duration) {
        let signals = self.store.signals();
        let mut in_flight = JoinSet::new();
        while !*shutdown.borrow() {
            let claimed = self.claim_round(&mut in_flight).await;
            while in_flight.try_join_next().is_some() {}
            if claimed > 0 {
                continue;
            }
            let wait = self.idle_wait().await;
            tokio::select! {
                _ = signals.deliveries.notified() => {}
                _ = self.capacity.notified() => {}
                _ = tokio::time::sleep(wait) => {}
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

    /// How long to sleep when nothing was claimed: until the next due delivery, within bounds.
    async fn idle_wait(&self) -> Duration {
        let now = self.clock.now_ms();
        match self.store.next_due_at(now).await {
            // Due but not claimable (its target is saturated): wait for capacity, briefly.
            Ok(Some(at)) if at <= now => Duration::from_millis(20),
            Ok(Some(at)) => Duration::from_millis((at - now) as u64).min(MAX_IDLE),
            Ok(None) => MAX_IDLE,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read next due delivery");
                MAX_IDLE
            }
        }
    }

    async fn claim_round(&self, in_flight: &mut JoinSet<()>) -> usize {
        let mut claimed = 0;
        for (name, slot) in &self.slots {
            // A disabled target's deliveries wait, pending, until it is enabled again.
            if self.switch.is_disabled(name) {
                continue;
            }
            let free = slot.permits.available_permits().min(MAX_CLAIM);
            if free == 0 {
                continue;
            }
            let lease_ms = (slot.target.timeout + Duration::from_secs(60)).as_millis() as i64;
            let due = match self
                .store
                .claim_due(name, self.clock.now_ms(), free, lease_ms)
                .await
            {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(target = %name, error = %e, "cannot claim deliveries");
                    continue;
                }
            };
            for d in due {
                let Ok(permit) = slot.permits.clone().try_acquire_owned() else {
                    break;
                };
                claimed += 1;
                let task = AttemptTask {
                    store: self.store.clone(),
                    client: self.client.clone(),
                    target: slot.target.clone(),
                    capacity: self.capacity.clone(),
                    clock: self.clock,
                    switch: self.switch.clone(),
                };
                in_flight.spawn(async move {
                    task.run(d).await;
                    drop(permit);
                });
            }
        }
        claimed
    }
}

struct AttemptTask {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    target: Arc<Target>,
    capacity: Arc<Notify>,
    clock: Clock,
    switch: TargetSwitch,
}

impl AttemptTask {
    async fn run(self, d: DueDelivery) {
        let attempt = d.attempts + 1;
        let started_at = self.clock.now_ms();
        let clock = Instant::now();
        let sent = client::send(&self.client, &self.target, &d, attempt).await;
        let duration_ms = clock.elapsed().as_millis() as i64;
        let verdict = self.target.retry.verdict(
            attempt,
            sent.result,
            sent.retry_after,
            rand::random::<f64>(),
        );
        let gone = sent.status_code == Some(410);
        if gone {
            // 410 Gone means "stop sending here" (Standard Webhooks): pause the target, keep the delivery.
            let reason = "target answered 410 Gone";
            if let Err(e) = self
                .switch
                .disable(&*self.store, &self.target.name, reason)
                .await
            {
                tracing::error!(target = %self.target.name, error = %e, "cannot disable target");
            }
            tracing::warn!(target = %self.target.name, "target answered 410 Gone: disabled until enabled again");
        }
        let after = match verdict {
            _ if gone => AfterAttempt::RetryAt(self.clock.now_ms()),
            Verdict::Success => AfterAttempt::Succeeded,
            Verdict::RetryAfter(wait) => {
                AfterAttempt::RetryAt(self.clock.now_ms() + wait.as_millis() as i64)
            }
            Verdict::GiveUp => AfterAttempt::Failed,
            Verdict::Exhausted => AfterAttempt::Dead,
        };
        if after != AfterAttempt::Succeeded {
            tracing::warn!(delivery = %d.id, target = %self.target.name, attempt, status = ?sent.status_code,
                error = sent.error.as_deref().unwrap_or(""), outcome = ?after, "delivery attempt failed");
        }
        let record = Attempt {
            delivery_id: d.id.clone(),
            attempt,
            started_at,
            duration_ms,
            status_code: sent.status_code,
            error: sent.error,
            response_headers: sent.response_headers,
            response_body: sent.response_body,
            after,
            finished_at: self.clock.now_ms(),
        };
        if let Err(e) = self.store.record_attempt(record).await {
            // The lease runs out and the delivery is attempted again: at least once, never lost.
            tracing::error!(delivery = %d.id, error = %e, "cannot record attempt");
        }
        self.capacity.notify_one();
    }
}
