//! Metrics: counters and histograms every stage writes to, rendered as Prometheus text on
//! `/metrics`.
//!
//! One [`Metrics`] per process, shared by ingress, the pipeline and the delivery worker. Writing a
//! sample is a short mutex section and never blocks on I/O; gauges that live in the store (queue
//! depth) are read at scrape time by whoever renders. Labels are source, route and target names
//! from the config, never anything a producer controls (unknown sources share one label).

pub(crate) mod activity;
mod series;

use crate::store::{COMMIT_BOUNDS, CommitStats};
use series::{Counters, Histograms, Series, escape};
use std::fmt::Write;
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets: 1 ms to 5 minutes.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

/// Upper bounds (seconds) of the transform-time buckets: 10 µs to 2.5 s.
const FAST_BUCKETS: [f64; 14] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25,
    1.0, 2.5,
];

/// How one delivery attempt ended, as the attempt counter labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptResult {
    Success,
    /// Failed and will be tried again.
    Retry,
    /// Failed for good: a 4xx answer.
    Failed,
    /// Failed and out of attempts.
    Dead,
    /// The target was paused (410 Gone) with the delivery kept.
    Paused,
}

impl AttemptResult {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Retry => "retry",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Paused => "paused",
        }
    }
}

/// Every metric of one gateway process.
#[derive(Debug)]
pub(crate) struct Metrics {
    received: Counters<1>,
    rejected: Counters<2>,
    deliveries: Counters<2>,
    attempts: Counters<2>,
    retries: Counters<1>,
    attempt_duration: Histograms,
    delivery_latency: Histograms,
    transform_time: Histograms,
    breaker_opened: Counters<1>,
    shed: Counters<1>,
    schema_mismatches: Counters<2>,
    evaluations_failed: Counters<1>,
    activity: activity::Activity,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            received: Counters::default(),
            rejected: Counters::default(),
            deliveries: Counters::default(),
            attempts: Counters::default(),
            retries: Counters::default(),
            attempt_duration: Histograms::new(&BUCKETS),
            delivery_latency: Histograms::new(&BUCKETS),
            transform_time: Histograms::new(&FAST_BUCKETS),
            breaker_opened: Counters::default(),
            shed: Counters::default(),
            schema_mismatches: Counters::default(),
            evaluations_failed: Counters::default(),
            activity: activity::Activity::default(),
        }
    }
}

/// Wall-clock Unix ms: the activity chart is read by people, against their clocks.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Gauges read from the store and the worker at scrape time.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    /// Events committed but not yet routed.
    pub(crate) unrouted: u64,
    /// Pending deliveries per target.
    pub(crate) pending: Vec<(String, u64)>,
    /// Per target: 0 closed, 1 open, 2 half-open.
    pub(crate) breaker: Vec<(String, u8)>,
    /// Targets paused by an operator or a 410.
    pub(crate) disabled: Vec<String>,
    /// The store's group commits so far.
    pub(crate) commits: CommitStats,
}

impl Metrics {
    pub(crate) fn event_received(&self, source: &str) {
        self.received.add([source], 1);
        self.activity.count(activity::Kind::Event, wall_ms());
    }

    pub(crate) fn event_rejected(&self, source: &str, reason: &str) {
        self.rejected.add([source, reason], 1);
    }

    /// An event of a source with `validate` did not match the catalog: `event_type` is a type
    /// the catalog has, or `_unknown` (so producers cannot grow the label set).
    pub(crate) fn schema_mismatch(&self, source: &str, event_type: &str) {
        self.schema_mismatches.add([source, event_type], 1);
    }

    /// A delivery reached a final state (`succeeded`, `failed`, `dead`), or was created failed.
    pub(crate) fn delivery_finished(&self, target: &str, outcome: &str) {
        self.deliveries.add([target, outcome], 1);
        let kind = match outcome {
            "succeeded" => activity::Kind::Succeeded,
            _ => activity::Kind::Failed,
        };
        self.activity.count(kind, wall_ms());
    }

    /// Events and finished deliveries per minute over the last hour, oldest first.
    pub(crate) fn last_hour(&self) -> Vec<activity::Minute> {
        self.activity.last_hour(wall_ms())
    }

    /// One attempt ended; `latency` is creation to success when it succeeded.
    pub(crate) fn attempt(
        &self,
        target: &str,
        attempt: u32,
        result: AttemptResult,
        duration: Duration,
        latency: Option<Duration>,
    ) {
        self.attempts.add([target, result.as_str()], 1);
        if attempt > 1 {
            self.retries.add([target], 1);
        }
        self.attempt_duration.observe(target, duration);
        if let Some(l) = latency {
            self.delivery_latency.observe(target, l);
        }
    }

    pub(crate) fn transform_time(&self, route: &str, elapsed: Duration) {
        self.transform_time.observe(route, elapsed);
    }

    pub(crate) fn breaker_opened(&self, target: &str) {
        self.breaker_opened.add([target], 1);
    }

    /// A delivery was recorded dead unattempted: its target's queue was full.
    pub(crate) fn delivery_shed(&self, target: &str) {
        self.shed.add([target], 1);
    }

    /// An event's routes could not be evaluated together (`overran`, `crashed`, `too_large`);
    /// each such event is then evaluated route by route, so only the routes at fault fail.
    pub(crate) fn evaluation_failed(&self, cause: &str) {
        self.evaluations_failed.add([cause], 1);
    }

    /// Prometheus text exposition (version 0.0.4).
    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        self.received.render(
            &mut out,
            "hookgate_events_received_total",
            "Events accepted (2xx) by source.",
            ["source"],
        );
        self.rejected.render(
            &mut out,
            "hookgate_events_rejected_total",
            "Requests refused by source and reason.",
            ["source", "reason"],
        );
        self.evaluations_failed.render(
            &mut out,
            "hookgate_route_evaluations_failed_total",
            "Events whose routes' mappings ran past jq.timeout_ms, crashed their evaluator or were too large to evaluate, by cause.",
            ["cause"],
        );
        self.deliveries.render(
            &mut out,
            "hookgate_deliveries_total",
            "Deliveries that reached a final state, by target and outcome.",
            ["target", "outcome"],
        );
        self.attempts.render(
            &mut out,
            "hookgate_delivery_attempts_total",
            "Delivery attempts by target and result.",
            ["target", "result"],
        );
        self.retries.render(
            &mut out,
            "hookgate_delivery_retries_total",
            "Attempts after the first, by target.",
            ["target"],
        );
        self.breaker_opened.render(
            &mut out,
            "hookgate_breaker_opened_total",
            "Times a target's circuit breaker opened.",
            ["target"],
        );
        self.shed.render(
            &mut out,
            "hookgate_deliveries_shed_total",
            "Deliveries recorded dead without an attempt because their target's queue was at `max_queue`.",
            ["target"],
        );
        self.schema_mismatches.render(
            &mut out,
            "hookgate_schema_mismatches_total",
            "Events of sources with `validate` that did not match the event catalog's schema for their type (`_unknown`: a type the catalog does not have), by source and event type.",
            ["source", "event_type"],
        );
        self.attempt_duration.render(
            &mut out,
            "hookgate_attempt_duration_seconds",
            "Duration of one delivery attempt (request to response), by target.",
            "target",
        );
        self.delivery_latency.render(
            &mut out,
            "hookgate_delivery_latency_seconds",
            "From routing to the successful attempt's end, by target.",
            "target",
        );
        self.transform_time.render(
            &mut out,
            "hookgate_transform_seconds",
            "Time to filter and transform one event, by route.",
            "route",
        );
        render_gauges(&mut out, gauges);
        out
    }
}

fn render_gauges(out: &mut String, g: &Gauges) {
    let name = "hookgate_store_commit_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time of each group commit of the store, from its first statement to the end of its commit (SQLite: every transaction of the writer; PostgreSQL: each batch of events stored or attempts recorded, waiting for a pooled connection included). Every 202 waits for one.\n# TYPE {name} histogram"
    );
    let series = Series {
        name,
        label: "",
        bounds: &COMMIT_BOUNDS,
    };
    let c = &g.commits;
    series.write(out, &c.at_most, c.count, c.sum_secs);
    let _ = writeln!(
        out,
        "# HELP hookgate_unrouted_events Events stored but not yet routed.\n# TYPE hookgate_unrouted_events gauge\nhookgate_unrouted_events {}",
        g.unrouted
    );
    target_gauge(
        out,
        "hookgate_queue_depth",
        "Pending deliveries by target.",
        g.pending.iter().map(|(t, n)| (t.as_str(), *n)),
    );
    target_gauge(
        out,
        "hookgate_breaker_state",
        "Circuit breaker per target: 0 closed, 1 open, 2 half-open.",
        g.breaker.iter().map(|(t, s)| (t.as_str(), u64::from(*s))),
    );
    target_gauge(
        out,
        "hookgate_target_disabled",
        "Targets paused by an operator or a 410 answer.",
        g.disabled.iter().map(|t| (t.as_str(), 1)),
    );
}

/// One gauge family with a `target` label.
fn target_gauge<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (&'a str, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (target, v) in values {
        let _ = writeln!(out, "{name}{{target=\"{}\"}} {v}", escape(target));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.attempt(
            "t",
            1,
            AttemptResult::Success,
            Duration::from_millis(3),
            None,
        );
        m.attempt("t", 2, AttemptResult::Retry, Duration::from_secs(2), None);
        let text = m.render(&Gauges::default());
        assert!(
            text.contains("hookgate_attempt_duration_seconds_bucket{target=\"t\",le=\"0.0025\"} 0")
        );
        assert!(
            text.contains("hookgate_attempt_duration_seconds_bucket{target=\"t\",le=\"0.005\"} 1")
        );
        assert!(
            text.contains("hookgate_attempt_duration_seconds_bucket{target=\"t\",le=\"2.5\"} 2")
        );
        assert!(
            text.contains("hookgate_attempt_duration_seconds_bucket{target=\"t\",le=\"+Inf\"} 2")
        );
        assert!(text.contains("hookgate_attempt_duration_seconds_count{target=\"t\"} 2"));
        assert!(text.contains("hookgate_delivery_retries_total{target=\"t\"} 1"));
        assert!(text.contains("hookgate_delivery_attempts_total{target=\"t\",result=\"retry\"} 1"));
    }

    #[test]
    fn the_store_commits_render_as_one_histogram_without_labels() {
        let commits = crate::store::CommitTimes::default();
        commits.observe(Duration::from_millis(3));
        commits.observe(Duration::from_millis(40));
        let text = Metrics::default().render(&Gauges {
            commits: commits.stats(),
            ..Gauges::default()
        });
        for line in [
            "hookgate_store_commit_seconds_bucket{le=\"0.0025\"} 0\n",
            "hookgate_store_commit_seconds_bucket{le=\"0.005\"} 1\n",
            "hookgate_store_commit_seconds_bucket{le=\"0.05\"} 2\n",
            "hookgate_store_commit_seconds_bucket{le=\"+Inf\"} 2\n",
            "hookgate_store_commit_seconds_sum 0.043\n",
            "hookgate_store_commit_seconds_count 2\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        // Before any commit: every bucket there, at zero.
        let empty = Metrics::default().render(&Gauges::default());
        assert!(empty.contains("hookgate_store_commit_seconds_bucket{le=\"1\"} 0\n"));
    }

    #[test]
    fn labels_are_escaped() {
        let m = Metrics::default();
        m.event_rejected("a\"b", "bad_signature");
        let text = m.render(&Gauges::default());
        assert!(
            text.contains(
                r#"hookgate_events_rejected_total{source="a\"b",reason="bad_signature"} 1"#
            )
        );
    }
}
