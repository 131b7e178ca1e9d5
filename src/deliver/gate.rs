//! The per-target gates the worker asks before claiming: circuit breaker and rate limit.
//!
//! Shared (cheaply cloned) between the worker, which consults and feeds them, and the admin API
//! and `/metrics`, which show them. State lives in memory only: after a restart every breaker
//! starts closed, which at worst costs one cool-down's worth of probing.

use super::breaker::{Breaker, BreakerState, Bucket};
use crate::deliver::config::Target;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Default)]
struct Gate {
    breaker: Option<Breaker>,
    bucket: Option<Bucket>,
}

/// Breakers and rate limits of every target. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gates(Arc<Mutex<BTreeMap<String, Gate>>>);

impl Gates {
    /// Applies the targets' policies, keeping the state of targets that stay (config reload).
    pub(crate) fn configure(&self, targets: &BTreeMap<String, Arc<Target>>, now: i64) {
        let mut gates = self.0.lock();
        gates.retain(|name, _| targets.contains_key(name));
        for (name, t) in targets {
            let gate = gates.entry(name.clone()).or_default();
            gate.breaker = match (t.breaker, gate.breaker.take()) {
                (None, _) => None,
                (Some(p), Some(mut b)) => {
                    b.set_policy(p);
                    Some(b)
                }
                (Some(p), None) => Some(Breaker::new(p)),
            };
            gate.bucket = t.rate_limit.map(|r| Bucket::new(r, now));
        }
    }

    /// How many deliveries of `target` may be claimed now; `None` for no limit.
    pub(crate) fn admits(&self, target: &str, now: i64) -> Option<usize> {
        let mut gates = self.0.lock();
        let gate = gates.get_mut(target)?;
        let by_breaker = gate.breaker.as_mut().and_then(|b| b.admits(now));
        let by_rate = gate.bucket.as_mut().map(|b| b.available(now));
        match (by_breaker, by_rate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn claimed(&self, target: &str, n: usize, now: i64) {
        let mut gates = self.0.lock();
        if let Some(gate) = gates.get_mut(target) {
            if let Some(b) = gate.breaker.as_mut() {
                b.claimed(n, now);
            }
            if let Some(b) = gate.bucket.as_mut() {
                b.take(n, now);
            }
        }
    }

    /// Feeds an attempt's health to the breaker; true when it opened it.
    pub(crate) fn record(&self, target: &str, healthy: bool, now: i64) -> bool {
        let mut gates = self.0.lock();
        gates
            .get_mut(target)
            .and_then(|g| g.breaker.as_mut())
            .is_some_and(|b| b.record(healthy, now))
    }

    /// The earliest time a gate that holds deliveries back opens again.
    pub(crate) fn wake_at(&self, now: i64) -> Option<i64> {
        let mut gates = self.0.lock();
        gates
            .values_mut()
            .flat_map(|g| {
                let reopen = g.breaker.as_ref().and_then(Breaker::reopens_at);
                let token = g.bucket.as_mut().and_then(|b| b.next_token_at(now));
                [reopen, token]
            })
            .flatten()
            .min()
    }

    /// Breaker state per target that has one.
    pub(crate) fn states(&self) -> Vec<(String, BreakerState)> {
        let gates = self.0.lock();
        gates
            .iter()
            .filter_map(|(n, g)| g.breaker.as_ref().map(|b| (n.clone(), b.state())))
            .collect()
    }

    pub(crate) fn state(&self, target: &str) -> Option<BreakerState> {
        let gates = self.0.lock();
        gates.get(target)?.breaker.as_ref().map(Breaker::state)
    }

    /// Closes `target`'s breaker: an operator's successful ping proved it healthy.
    pub(crate) fn reset(&self, target: &str, now: i64) {
        self.record(target, true, now);
    }
}
