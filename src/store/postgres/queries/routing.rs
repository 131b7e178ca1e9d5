//! The SQL of a routing's record: which routings of a batch may still be written (the fence), and
//! their rows, in a handful of statements whatever the batch's size (rows go in as arrays,
//! `unnest`, not one statement per event).
//!
//! Never commits: the fence's locks hold until the caller's transaction ends.

use super::queue::insert_attempts;
use super::rows::{DeliveryRows, Rows};
use super::*;
use crate::store::*;
use futures_util::future::try_join4;

/// Records routings.
///
/// Fenced: a routing is taken whole while its event is unrouted, and once it is routed only for
/// routes still `waiting` for their plugin; and only if no replay came between (the store may hold
/// the ids of a routing made before it). So an instance whose routing lease ran out (and whose
/// event another instance routed meanwhile), two instances resolving the same waiting route, or a
/// retried call whose commit did succeed, never write deliveries twice.
pub(in crate::store::postgres) async fn record_routing(
    tx: &Transaction<'_>,
    owner: &str,
    batch: &RoutingBatch,
    now: i64,
) -> Pg<Recorded> {
    let fence = fence(tx, &batch.routings).await?;
    let attempted: HashMap<&str, &Attempt> = batch
        .attempts
        .iter()
        .map(|a| (a.delivery_id.as_str(), a))
        .collect();
    let mut typed: Vec<(i64, &str)> = Vec::new();
    let mut results = Rows::default();
    let mut deliveries = DeliveryRows::default();
    let mut attempts = Vec::new();
    // One row per (event, route) in one statement, or ON CONFLICT refuses it (a batch never
    // routes an event twice; this only keeps that from becoming an error).
    let mut seen_results = HashSet::new();
    for routing in &batch.routings {
        let event = routing.event_id.as_str();
        let Some(seq) = fence.seq(event) else {
            continue;
        };
        typed.extend(routing.event_type.as_deref().map(|t| (seq, t)));
        for result in routing
            .results
            .iter()
            .filter(|r| fence.takes(event, &r.route) && !(fence.fresh(event) && routing.implies(r)))
        {
            if seen_results.insert((event, result.route.as_str())) {
                results.push([
                    Some(event.into()),
                    Some(result.route.as_str().into()),
                    Some(result.outcome.as_str().into()),
                    result.detail.as_deref().map(text),
                ]);
            }
        }
        for d in routing
            .deliveries
            .iter()
            .filter(|d| fence.takes(event, &d.route))
        {
            let attempt = attempted.get(d.id.as_str()).copied();
            let lease = batch
                .leases
                .get(&d.id)
                .copied()
                .filter(|_| attempt.is_none());
            deliveries.push(event, d, now, lease.map(|until| (until, owner)), attempt);
            attempts.extend(attempt);
        }
    }
    let recorded = Recorded {
        leased: deliveries.leased(),
        claimable: deliveries.claimable(),
    };
    // Sent together: the connection pipelines them, one round trip for the four (they depend on
    // the fence, not on one another).
    try_join4(
        insert_types(tx, &typed),
        insert_results(tx, &results),
        deliveries.insert(tx, now),
        insert_attempts(tx, attempts.into_iter()),
    )
    .await?;
    Ok(recorded)
}

/// What [`record_routing`] wrote.
pub(in crate::store::postgres) struct Recorded {
    /// The leased deliveries written (the caller may hand them over).
    pub leased: Vec<String>,
    /// Whether a claim can take any delivery written (the workers must look).
    pub claimable: bool,
}

/// Which of a batch's routings may be written, and their events' `seq`.
struct Fence {
    /// Events this transaction took off the queue: their routings are written whole.
    taken: HashMap<String, i64>,
    /// Events routed before, and not replayed since: only their `waiting` routes are written.
    routed: HashMap<String, i64>,
    /// (event, route) still waiting for a plugin, of the `routed` events.
    waiting: HashSet<(String, String)>,
}

impl Fence {
    fn seq(&self, event: &str) -> Option<i64> {
        self.taken
            .get(event)
            .or_else(|| self.routed.get(event))
            .copied()
    }

    /// Whether this transaction took `event` off the queue: its first routing since any replay.
    fn fresh(&self, event: &str) -> bool {
        self.taken.contains_key(event)
    }

    fn takes(&self, event: &str, route: &str) -> bool {
        self.taken.contains_key(event)
            || (self.routed.contains_key(event)
                && self
                    .waiting
                    .contains(&(event.to_string(), route.to_string())))
    }
}

/// Locks the batch's event rows, in id order (so two instances fencing overlapping batches cannot
/// deadlock; a replay locks the same row), and takes the events still queued off the queue.
async fn fence(tx: &Transaction<'_>, routings: &[Routing]) -> Pg<Fence> {
    let ids: Vec<&str> = routings.iter().map(|r| r.event_id.as_str()).collect();
    let made_at: HashMap<&str, i64> = routings
        .iter()
        .map(|r| (r.event_id.as_str(), i64::from(r.replays)))
        .collect();
    let rows = tx
        .query(
            &tx.cached(
                "SELECT id, replays, seq FROM events WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            )
            .await?,
            &[&ids],
        )
        .await?;
    let mut seqs: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let id: String = r.try_get(0)?;
        // Made before a replay: left to the replay's own routing, like a pruned event.
        if made_at.get(id.as_str()) == Some(&i64::from(r.try_get::<_, i32>(1)?)) {
            seqs.insert(id, r.try_get(2)?);
        }
    }
    // In a statement of its own, so under the locks just taken: a routing another instance
    // committed while this one waited for them leaves `events` as it was (only `unrouted`
    // changes), and the locking statement's snapshot, taken before the wait, would still see the
    // event queued.
    let wanted: Vec<i64> = seqs.values().copied().collect();
    let queued: HashSet<i64> = tx
        .query(
            &tx.cached("DELETE FROM unrouted WHERE seq = ANY($1) RETURNING seq")
                .await?,
            &[&wanted],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Pg<_>>()?;
    let (taken, routed) = seqs.into_iter().partition(|(_, seq)| queued.contains(seq));
    let waiting = waiting(tx, &routed).await?;
    Ok(Fence {
        taken,
        routed,
        waiting,
    })
}

async fn waiting(
    tx: &Transaction<'_>,
    routed: &HashMap<String, i64>,
) -> Pg<HashSet<(String, String)>> {
    if routed.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<&str> = routed.keys().map(String::as_str).collect();
    tx.query(
        &tx.cached(
            "SELECT event_id, route FROM route_results \
             WHERE event_id = ANY($1) AND outcome = 'waiting'",
        )
        .await?,
        &[&ids],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect()
}

/// Upserted: a replay's routing may find another type (the config changed meanwhile).
async fn insert_types(tx: &Transaction<'_>, typed: &[(i64, &str)]) -> Pg<u64> {
    if typed.is_empty() {
        return Ok(0);
    }
    let (seqs, types): (Vec<i64>, Vec<Cow<str>>) =
        typed.iter().map(|(seq, t)| (*seq, text(t))).unzip();
    let types: Vec<&str> = types.iter().map(|t| t.as_ref()).collect();
    tx.execute(
        &tx.cached(
            "INSERT INTO event_types (seq, event_type) \
             SELECT * FROM unnest($1::BIGINT[], $2::TEXT[]) \
             ON CONFLICT (seq) DO UPDATE SET event_type = EXCLUDED.event_type",
        )
        .await?,
        &[&seqs, &types],
    )
    .await
}

async fn insert_results(tx: &Transaction<'_>, results: &Rows<'_, 4>) -> Pg<u64> {
    if results.is_empty() {
        return Ok(0);
    }
    tx.execute(
        &tx.cached(
            "INSERT INTO route_results (event_id, route, outcome, detail) \
             SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[]) \
             ON CONFLICT (event_id, route) DO UPDATE \
             SET outcome = EXCLUDED.outcome, detail = EXCLUDED.detail",
        )
        .await?,
        &[
            &results.col(0),
            &results.col(1),
            &results.col(2),
            &results.col(3),
        ],
    )
    .await
}
