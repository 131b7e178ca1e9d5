//! Each target's queue is bounded, so a target that stays down for days cannot fill the store,
//! and cannot make ingress refuse events bound for other targets either.
//!
//! The pending deliveries of every target are counted from the store every [`REFRESH`]. When the
//! route loop records a batch, a new delivery whose target already holds `max_queue` pending ones
//! is recorded `dead` without an attempt, with its body and an error that says why: it is in the
//! delivery log, counted in `/metrics` and retried like any dead delivery once the target drains.
//! Nothing else changes for the event: its other deliveries go ahead. This module must never
//! drop a delivery without recording it.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{DeliveryStatus, Routing};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the targets' queues are counted in the store (by [`super::backlog::refresh`]).
pub(crate) const REFRESH: Duration = Duration::from_secs(5);
/// How often a target that sheds is logged while it does.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Pending deliveries per target, as last counted in the store.
pub(crate) type Depths = HashMap<String, u64>;

/// The route loop's view of the targets' queues.
#[derive(Debug)]
pub(crate) struct Queues {
    counted: watch::Receiver<Arc<Depths>>,
    /// Deliveries recorded pending since the last count, per target.
    added: HashMap<String, u64>,
    /// Shed since the last warning, and when that was, per target.
    warned: HashMap<String, (Option<Instant>, u64)>,
}

/// The counting side and the route loop's side.
pub(crate) fn queues() -> (watch::Sender<Arc<Depths>>, Queues) {
    let (tx, rx) = watch::channel(Arc::new(Depths::new()));
    let queues = Queues {
        counted: rx,
        added: HashMap::new(),
        warned: HashMap::new(),
    };
    (tx, queues)
}

impl Queues {
    /// Marks dead every pending delivery whose target's queue is full, and counts the others in.
    pub(crate) fn shed<'a>(
        &mut self,
        cfg: &Config,
        metrics: &Metrics,
        routings: impl IntoIterator<Item = &'a mut Routing>,
    ) {
        if self.counted.has_changed().unwrap_or(false) {
            self.added.clear();
        }
        let counted = self.counted.borrow_and_update().clone();
        for routing in routings {
            for d in &mut routing.deliveries {
                if d.status != DeliveryStatus::Pending {
                    continue;
                }
                let Some(target) = cfg.targets.get(&d.target) else {
                    continue;
                };
                let added = self.added.get(&d.target).copied().unwrap_or(0);
                let depth = counted.get(&d.target).copied().unwrap_or(0) + added;
                if depth < target.max_queue {
                    // Counted without copying the name, but for a target's first delivery.
                    match self.added.get_mut(&d.target) {
                        Some(n) => *n += 1,
                        None => {
                            self.added.insert(d.target.clone(), 1);
                        }
                    }
                    continue;
                }
                d.status = DeliveryStatus::Dead;
                d.error = Some(format!(
                    "not queued: target `{}` already has {depth} deliveries waiting \
                     (targets.{}.max_queue = {}); retry it once the target drains",
                    d.target, d.target, target.max_queue
                ));
                metrics.delivery_shed(&d.target);
                metrics.delivery_finished(&d.target, "dead");
                self.warn(&d.target, depth, target.max_queue);
            }
        }
    }

    /// Logs a target that sheds at most once per [`WARN_EVERY`], with how many it shed meanwhile.
    fn warn(&mut self, target: &str, depth: u64, limit: u64) {
        let now = Instant::now();
        let (last, shed) = self.warned.entry(target.to_string()).or_insert((None, 0));
        *shed += 1;
        if last.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            tracing::warn!(
                target = %target,
                waiting = depth,
                max_queue = limit,
                shed = *shed,
                "target queue full: new deliveries are recorded dead until it drains"
            );
            *last = Some(now);
            *shed = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewDelivery;

    const CONFIG: &str = r#"
[sources.s]
kind = "generic"

[targets.small]
url = "http://127.0.0.1:9/"
max_queue = 3

[targets.big]
url = "http://127.0.0.1:9/"

[[routes]]
name = "r"
source = "s"
targets = ["small", "big"]
"#;

    fn routing(n: usize) -> Routing {
        let mut r = Routing::new(&crate::store::StoredEvent::blank(&format!("e{n}"), 0));
        for target in ["small", "big"] {
            r.deliveries.push(NewDelivery {
                id: format!("d{n}-{target}"),
                route: "r".into(),
                target: target.into(),
                body: None,
                headers: Vec::new(),
                status: DeliveryStatus::Pending,
                error: None,
            });
        }
        r
    }

    fn statuses(routings: &[Routing], target: &str) -> Vec<DeliveryStatus> {
        routings
            .iter()
            .flat_map(|r| &r.deliveries)
            .filter(|d| d.target == target)
            .map(|d| d.status)
            .collect()
    }

    #[test]
    fn a_full_target_gets_dead_deliveries_and_the_others_are_untouched() {
        let cfg = Config::parse(CONFIG, "test.toml", &|_| None).unwrap();
        let metrics = Metrics::default();
        let (counted, mut queues) = queues();
        counted.send_replace(Arc::new(Depths::from([("small".to_string(), 1)])));
        let mut routings: Vec<Routing> = (0..4).map(routing).collect();
        queues.shed(&cfg, &metrics, routings.iter_mut());

        use DeliveryStatus::{Dead, Pending};
        // One waiting in the store, two more fit; the fourth and fifth do not.
        assert_eq!(statuses(&routings, "small"), [Pending, Pending, Dead, Dead]);
        assert_eq!(statuses(&routings, "big"), [Pending; 4]);
        let error = routings[3].deliveries[0].error.as_deref().unwrap();
        assert!(error.contains("targets.small.max_queue = 3"), "{error}");
        let text = metrics.render(&Default::default());
        assert!(text.contains(r#"hookgate_deliveries_shed_total{target="small"} 2"#));

        // A new count replaces what was added since the last: the queue drained.
        counted.send_replace(Arc::new(Depths::new()));
        let mut routings: Vec<Routing> = (4..6).map(routing).collect();
        queues.shed(&cfg, &metrics, routings.iter_mut());
        assert_eq!(statuses(&routings, "small"), [Pending, Pending]);
    }
}
