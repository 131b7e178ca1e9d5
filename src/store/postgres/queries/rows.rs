//! Rows bound as arrays: a batch goes in as one `INSERT ... SELECT FROM unnest(...)`, whatever its
//! size.

use super::*;
use crate::store::*;
use deadpool_postgres::Transaction;

/// Text columns of rows bound as arrays.
pub(super) struct Rows<'a, const N: usize> {
    rows: Vec<[Option<Cow<'a, str>>; N]>,
}

impl<const N: usize> Default for Rows<'_, N> {
    fn default() -> Self {
        Self { rows: Vec::new() }
    }
}

impl<'a, const N: usize> Rows<'a, N> {
    pub(super) fn push(&mut self, row: [Option<Cow<'a, str>>; N]) {
        self.rows.push(row);
    }
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    pub(super) fn col(&self, i: usize) -> Vec<Option<&str>> {
        self.rows.iter().map(|r| r[i].as_deref()).collect()
    }
}

/// New deliveries as columns, for one `INSERT ... SELECT FROM unnest(...)`.
#[derive(Default)]
pub(super) struct DeliveryRows<'a> {
    ids: Vec<&'a str>,
    events: Vec<&'a str>,
    routes: Vec<&'a str>,
    targets: Vec<&'a str>,
    statuses: Vec<&'static str>,
    bodies: Vec<Option<&'a [u8]>>,
    headers: Vec<String>,
    next: Vec<Option<i64>>,
    errors: Vec<Option<Cow<'a, str>>>,
    lease_until: Vec<i64>,
    lease_owners: Vec<Option<&'a str>>,
    attempts: Vec<i64>,
    updated: Vec<i64>,
}

impl<'a> DeliveryRows<'a> {
    /// A delivery of `event` as routed at `now`, or in the state its first `attempt` left it.
    pub(super) fn push(
        &mut self,
        event: &'a str,
        d: &'a NewDelivery,
        now: i64,
        lease: Option<(i64, &'a str)>,
        attempt: Option<&'a Attempt>,
    ) {
        let (status, next) = match attempt {
            Some(a) => a.after.state(),
            None => (
                d.status,
                (d.status == DeliveryStatus::Pending).then_some(now),
            ),
        };
        let error = attempt.map_or(d.error.as_deref(), |a| a.error.as_deref());
        self.lease_until.push(lease.map_or(0, |(until, _)| until));
        self.lease_owners.push(lease.map(|(_, owner)| owner));
        self.ids.push(&d.id);
        self.events.push(event);
        self.routes.push(&d.route);
        self.targets.push(&d.target);
        self.statuses.push(status.as_str());
        self.bodies.push(d.body.as_deref());
        self.headers.push(pairs_to_json(&d.headers));
        self.next.push(next);
        self.errors.push(error.map(text));
        self.attempts
            .push(attempt.map_or(0, |a| i64::from(a.attempt)));
        self.updated.push(attempt.map_or(now, |a| a.finished_at));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(super) fn leased(&self) -> Vec<String> {
        self.ids
            .iter()
            .zip(&self.lease_owners)
            .filter(|(_, owner)| owner.is_some())
            .map(|(id, _)| id.to_string())
            .collect()
    }

    pub(super) fn claimable(&self) -> bool {
        self.statuses
            .iter()
            .zip(&self.lease_owners)
            .any(|(status, owner)| *status == DeliveryStatus::Pending.as_str() && owner.is_none())
    }

    /// Inserts the rows in one statement; none, in none.
    pub(super) async fn insert(&self, tx: &Transaction<'_>, now: i64) -> Pg<u64> {
        if self.is_empty() {
            return Ok(0);
        }
        tx.execute(
            &tx.cached(
                "INSERT INTO deliveries (id, event_id, route, target, status, body, headers, \
             next_attempt_at, last_error, lease_until, lease_owner, attempts, updated_at, created_at) \
             SELECT u.*, $14 FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], \
             $5::TEXT[], $6::BYTEA[], $7::TEXT[], $8::BIGINT[], $9::TEXT[], $10::BIGINT[], \
             $11::TEXT[], $12::BIGINT[], $13::BIGINT[]) AS u",
            )
            .await?,
            &[
                &self.ids,
                &self.events,
                &self.routes,
                &self.targets,
                &self.statuses,
                &self.bodies,
                &self.headers,
                &self.next,
                &self.errors.iter().map(|e| e.as_deref()).collect::<Vec<_>>(),
                &self.lease_until,
                &self.lease_owners,
                &self.attempts,
                &self.updated,
                &now,
            ],
        )
        .await
    }
}
