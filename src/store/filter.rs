//! The delivery log's filters as SQL, for both stores: a `WHERE` clause holding only the filters
//! given, with its parameters in order. A clause like `(?1 IS NULL OR status = ?1)` keeps one
//! statement for every combination but hides the equality from the planner (SQLite's always,
//! PostgreSQL's once it settles on a generic plan for the prepared statement), which then scans
//! the whole table for a rare status or target; with only the given filters it searches the index
//! that fits (`deliveries (status, seq)`, `(target, seq)`, `(route, seq)`, `events (source,
//! seq)`), so a console page costs the same with a million deliveries as with a hundred.
//!
//! Builds text and parameters only; it never runs a statement.

use super::{DeliveryQuery, EventQuery};

/// Whose SQL: placeholders and index hints differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A filter's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// A `WHERE` clause (never empty: `TRUE` when nothing filters) and its parameters, numbered
/// after the `taken` ones the statement binds before them.
pub(crate) struct Filter {
    dialect: Dialect,
    taken: usize,
    pub(crate) clause: String,
    pub(crate) params: Vec<Param>,
}

impl Filter {
    fn new(dialect: Dialect, taken: usize) -> Self {
        Self {
            dialect,
            taken,
            clause: String::new(),
            params: Vec::new(),
        }
    }

    /// Appends `value` to the parameters and gives its placeholder, for a statement's own
    /// parameters after the filter's (a `LIMIT`).
    pub(crate) fn bind(&mut self, value: Param) -> String {
        self.params.push(value);
        let n = self.taken + self.params.len();
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// Adds `condition`, whose one `?` takes `value`.
    fn and(&mut self, condition: &str, value: Param) {
        let placeholder = self.bind(value);
        self.and_plain(&condition.replacen('?', &placeholder, 1));
    }

    /// Adds `condition`, which takes no parameter.
    fn and_plain(&mut self, condition: &str) {
        if !self.clause.is_empty() {
            self.clause.push_str(" AND ");
        }
        self.clause.push_str(condition);
    }

    /// Rows of `table` whose `column` (a time, in an index) is at or after `since`. A time range
    /// alone gives the planner two bad choices: read the table backwards by `seq` until 50 rows
    /// match (every row, when nothing is that recent), or read the range by time and sort it
    /// (every row, for "the last day" of a busy log). Times grow with `seq`, so the first row of
    /// the range, found in the time index, also bounds `seq`, and the query reads only its page.
    /// A row written while the clock stood behind an earlier row's (a clock stepped back, or
    /// instances with skewed clocks) may fall outside the bound, near the range's start.
    fn since(&mut self, table: &str, column: &str, since: i64) {
        let p = self.bind(Param::Int(since));
        self.and_plain(&format!(
            "{column} >= {p} AND seq >= (SELECT seq FROM {table} WHERE {column} >= {p} \
             ORDER BY {column} LIMIT 1)"
        ));
    }

    fn done(mut self) -> Self {
        if self.clause.is_empty() {
            self.clause.push_str("TRUE");
        }
        self
    }

    /// `column`, kept out of SQLite's index choice (`+column`): see [`deliveries`].
    fn unindexed(&self, condition: &'static str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("+{condition}"),
            Dialect::Postgres => condition.to_string(),
        }
    }
}

/// Which deliveries a query selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The delivery log: every status unless one is asked for; `before` pages.
    Listed,
    /// What a bulk retry takes: never pending ones, never those that failed in routing (no
    /// attempt: their mapping failed, and sending them would send the raw event), and succeeded
    /// ones only when the query names them.
    Retryable,
}

/// The deliveries `q` selects in `scope`; the statement binds `taken` parameters before these.
pub(crate) fn deliveries(
    dialect: Dialect,
    q: &DeliveryQuery,
    scope: Scope,
    taken: usize,
) -> Filter {
    build(dialect, q, scope, taken, true)
}

/// The deliveries `q` counts in `scope`: as [`deliveries`], without the page cursor.
pub(crate) fn counted(dialect: Dialect, q: &DeliveryQuery, scope: Scope) -> Filter {
    build(dialect, q, scope, 0, false)
}

fn build(dialect: Dialect, q: &DeliveryQuery, scope: Scope, taken: usize, paged: bool) -> Filter {
    let mut f = Filter::new(dialect, taken);
    match (scope, q.status) {
        (_, Some(status)) => f.and("status = ?", Param::Text(status.as_str().to_string())),
        (Scope::Retryable, None) => f.and_plain("status IN ('failed', 'dead')"),
        (Scope::Listed, None) => {}
    }
    if scope == Scope::Retryable {
        f.and_plain("status != 'pending' AND NOT (status = 'failed' AND attempts = 0)");
    }
    // One index serves a query. Without statistics SQLite may pick any equality's index, and
    // `route` of a busy route with a rare status scans that whole route; so there the others are
    // written `+column` (no index) and the index is chosen here: status first (failed and dead
    // are the rare ones people look for), then route, then target. PostgreSQL's planner has the
    // statistics to choose by itself.
    let by_status = q.status.is_some() || scope == Scope::Retryable;
    let route_col = if by_status {
        f.unindexed("route = ?")
    } else {
        "route = ?".to_string()
    };
    let target_col = if by_status || q.route.is_some() {
        f.unindexed("target = ?")
    } else {
        "target = ?".to_string()
    };
    if let Some(t) = &q.target {
        f.and(&target_col, Param::Text(t.clone()));
    }
    if let Some(r) = &q.route {
        f.and(&route_col, Param::Text(r.clone()));
    }
    if let (Scope::Listed, true, Some(before)) = (scope, paged, q.before) {
        f.and("seq < ?", Param::Int(before));
    }
    if let Some(since) = q.since {
        f.since("deliveries", "created_at", since);
    }
    if let Some(source) = &q.source {
        f.and(
            "event_id IN (SELECT id FROM events WHERE source = ?)",
            Param::Text(source.clone()),
        );
    }
    f.done()
}

/// The events `q` selects; the statement binds `taken` parameters before these.
pub(crate) fn events(dialect: Dialect, q: &EventQuery, taken: usize) -> Filter {
    let mut f = Filter::new(dialect, taken);
    if let Some(s) = &q.source {
        f.and("source = ?", Param::Text(s.clone()));
    }
    if let Some(t) = &q.event_type {
        // The type lives beside the event, so that its row is written once (the stores'
        // migrations `routing_off_events`).
        f.and(
            "seq IN (SELECT seq FROM event_types WHERE event_type = ?)",
            Param::Text(t.clone()),
        );
    }
    if let Some(before) = q.before {
        f.and("seq < ?", Param::Int(before));
    }
    if let Some(since) = q.since {
        f.since("events", "received_at", since);
    }
    f.done()
}

/// A limit as a parameter: a parameter, not part of the text, so every page size shares one
/// cached statement.
pub(crate) fn limit(n: usize) -> Param {
    Param::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DeliveryStatus;

    #[test]
    fn only_the_filters_given_are_written_numbered_after_the_statements_own() {
        let q = DeliveryQuery {
            status: Some(DeliveryStatus::Failed),
            route: Some("r".into()),
            since: Some(7),
            ..DeliveryQuery::default()
        };
        let mut f = deliveries(Dialect::Postgres, &q, Scope::Listed, 1);
        let lim = f.bind(limit(50));
        assert_eq!(
            f.clause,
            "status = $2 AND route = $3 AND created_at >= $4 AND seq >= (SELECT seq FROM deliveries \
             WHERE created_at >= $4 ORDER BY created_at LIMIT 1)"
        );
        assert_eq!(lim, "$5");
        assert_eq!(
            f.params,
            [
                Param::Text("failed".into()),
                Param::Text("r".into()),
                Param::Int(7),
                Param::Int(50)
            ]
        );
        let f = deliveries(Dialect::Sqlite, &q, Scope::Listed, 0);
        assert!(
            f.clause
                .starts_with("status = ?1 AND +route = ?2 AND created_at >= ?3 AND seq >= ("),
            "{}",
            f.clause
        );
        let nothing = events(Dialect::Sqlite, &EventQuery::default(), 0);
        assert_eq!((nothing.clause.as_str(), nothing.params.len()), ("TRUE", 0));
    }

    #[test]
    fn a_bulk_retry_never_takes_pending_or_routing_failures() {
        let f = deliveries(
            Dialect::Postgres,
            &DeliveryQuery::default(),
            Scope::Retryable,
            0,
        );
        assert_eq!(
            f.clause,
            "status IN ('failed', 'dead') AND status != 'pending' AND NOT (status = 'failed' AND attempts = 0)"
        );
    }
}
