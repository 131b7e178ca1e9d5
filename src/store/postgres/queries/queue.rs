//! The queue's SQL: events in, routings recorded (a batch in a handful of statements), deliveries
//! claimed under leases, attempts recorded.

use super::rows::{DeliveryRows, Rows};
use super::*;
use crate::store::*;
use deadpool_postgres::{ClientWrapper as Client, Transaction};

/// Inserts events in one statement (one commit for the lot: group commit for ingress), leased to
/// `owner` for routing: ingress hands them to its own route loop in memory, so other instances
/// leave them alone unless it dies.
pub(in crate::store::postgres) async fn insert_events(
    c: &Client,
    owner: &str,
    lease_ms: i64,
    events: &[StoredEvent],
) -> Pg<u64> {
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let sources: Vec<&str> = events.iter().map(|e| e.source.as_str()).collect();
    let received: Vec<i64> = events.iter().map(|e| e.received_at).collect();
    let headers: Vec<String> = events.iter().map(|e| pairs_to_json(&e.headers)).collect();
    let queries: Vec<String> = events.iter().map(|e| pairs_to_json(&e.query)).collect();
    let bodies: Vec<&[u8]> = events.iter().map(|e| &e.body[..]).collect();
    // The event and its place in the routing queue, in one statement.
    let sql = format!(
        "WITH ins AS (INSERT INTO events (id, source, received_at, headers, query, body) \
           SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], \
           $6::BYTEA[]) RETURNING seq) \
         INSERT INTO unrouted (seq, owner, lease_until) SELECT seq, $7, {DB_NOW} + $8 FROM ins"
    );
    c.execute(
        &c.cached(&sql).await?,
        &[
            &ids, &sources, &received, &headers, &queries, &bodies, &owner, &lease_ms,
        ],
    )
    .await
}

/// Leases up to `limit` unrouted events to `owner` for `lease_ms`. Events another live instance
/// holds are skipped; events this instance already holds are handed out again when `own` (its
/// pipeline asks again only after it gave up on them, e.g. while the evaluator was unavailable),
/// and skipped too when not (a look for what other instances left, while its own are in memory).
pub(in crate::store::postgres) async fn unrouted(
    c: &Client,
    owner: &str,
    span: Span,
    limit: usize,
    lease_ms: i64,
    own: bool,
) -> Pg<Vec<(i64, StoredEvent)>> {
    let gone = holder_gone("unrouted.owner");
    let own = if own { "OR owner = $2" } else { "" };
    let sql = format!(
        "WITH clock AS (SELECT {DB_NOW} AS now), \
         picked AS (SELECT seq FROM unrouted, clock \
           WHERE (lease_until <= clock.now {own} OR {gone}) AND seq > $4 AND seq <= $5 \
           ORDER BY seq LIMIT $1 FOR UPDATE OF unrouted SKIP LOCKED) \
         UPDATE unrouted q SET lease_until = clock.now + $3, owner = $2 \
         FROM picked, clock, events e WHERE q.seq = picked.seq AND e.seq = q.seq \
         RETURNING e.seq, e.id, e.source, e.received_at, e.headers, e.query, e.body, e.replays"
    );
    let rows = c
        .query(
            &c.cached(&sql).await?,
            &[&(limit as i64), &owner, &lease_ms, &span.after, &span.upto],
        )
        .await?;
    let mut events = rows
        .iter()
        .map(|r| Ok((r.try_get::<_, i64>(0)?, event_row(r, 1)?)))
        .collect::<Pg<Vec<_>>>()?;
    // RETURNING has no order.
    events.sort_by_key(|(seq, _)| *seq);
    Ok(events)
}

/// See [`crate::store::Queue::last_seq`].
pub(in crate::store::postgres) async fn last_seq(c: &Client) -> Pg<i64> {
    let row = c
        .query_one(
            &c.cached("SELECT COALESCE(MAX(seq), 0) FROM events").await?,
            &[],
        )
        .await?;
    row.try_get(0)
}

/// A `StoredEvent` from columns id, source, received_at, headers, query, body, replays starting
/// at `at`.
pub(in crate::store::postgres) fn event_row(r: &Row, at: usize) -> Pg<StoredEvent> {
    Ok(StoredEvent {
        id: r.try_get(at)?,
        source: r.try_get(at + 1)?,
        received_at: r.try_get(at + 2)?,
        headers: pairs_from_json(r.try_get(at + 3)?),
        query: pairs_from_json(r.try_get(at + 4)?),
        body: Bytes::from(r.try_get::<_, Vec<u8>>(at + 5)?),
        // Only ever counted up from 0.
        replays: r.try_get::<_, i32>(at + 6)?.max(0) as u32,
    })
}

/// Records routings; true when any delivery was written. A handful of statements per batch,
/// whatever its size: rows go in as arrays (`unnest`), not one statement per event.
///
/// Fenced on the event rows: a routing is taken whole while its event is unrouted, and once it is
/// routed only for routes still `waiting` for their plugin; and only if no replay came between
/// (the store may hold the ids of a routing made before it). So an instance whose routing lease ran
/// out (and whose event another instance routed meanwhile), two instances resolving the same
/// waiting route, or a retried call whose commit did succeed, never write deliveries twice.
pub(in crate::store::postgres) async fn record_routing(
    tx: &Transaction<'_>,
    owner: &str,
    batch: &RoutingBatch,
    now: i64,
) -> Pg<Recorded> {
    let routings = &batch.routings;
    let ids: Vec<&str> = routings.iter().map(|r| r.event_id.as_str()).collect();
    // Locked in id order, so two instances fencing overlapping batches cannot deadlock.
    let rows = tx
        .query(
            &tx.cached(
                "SELECT id, replays, seq FROM events WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            )
            .await?,
            &[&ids],
        )
        .await?;
    let made_at: HashMap<&str, i64> = routings
        .iter()
        .map(|r| (r.event_id.as_str(), i64::from(r.replays)))
        .collect();
    let mut seqs: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let id: String = r.try_get(0)?;
        // Made before a replay: left to the replay's own routing, like a pruned event.
        if made_at.get(id.as_str()) == Some(&i64::from(r.try_get::<_, i32>(1)?)) {
            seqs.insert(id, r.try_get(2)?);
        }
    }
    // Read in a statement of its own, so under locks already held: a routing another instance
    // committed while this one waited for them leaves `events` as it was (only `unrouted` changes),
    // and the locking statement's snapshot, taken before the wait, would still see it unrouted.
    let wanted: Vec<i64> = seqs.values().copied().collect();
    let unrouted: HashSet<i64> = tx
        .query(
            &tx.cached("SELECT seq FROM unrouted WHERE seq = ANY($1)")
                .await?,
            &[&wanted],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Pg<_>>()?;
    let routed: HashMap<&str, bool> = seqs
        .iter()
        .map(|(id, seq)| (id.as_str(), !unrouted.contains(seq)))
        .collect();
    let already: Vec<&str> = routed
        .iter()
        .filter(|(_, routed)| **routed)
        .map(|(id, _)| *id)
        .collect();
    let mut waiting: HashSet<(String, String)> = HashSet::new();
    if !already.is_empty() {
        for r in tx
            .query(
                &tx.cached(
                    "SELECT event_id, route FROM route_results \
                 WHERE event_id = ANY($1) AND outcome = 'waiting'",
                )
                .await?,
                &[&already],
            )
            .await?
        {
            waiting.insert((r.try_get(0)?, r.try_get(1)?));
        }
    }
    // Pruned meanwhile: nothing to attach results to.
    let takes = |event: &str, route: &str| match routed.get(event) {
        None => false,
        Some(false) => true,
        Some(true) => waiting.contains(&(event.to_string(), route.to_string())),
    };
    let attempted: HashMap<&str, &Attempt> = batch
        .attempts
        .iter()
        .map(|a| (a.delivery_id.as_str(), a))
        .collect();
    let mut marked: Vec<i64> = Vec::with_capacity(routings.len());
    let mut typed: Vec<(i64, &str)> = Vec::new();
    let mut results = Rows::default();
    let mut deliveries = DeliveryRows::default();
    let mut attempts = Vec::new();
    // One row per (event, route) in one statement, or ON CONFLICT refuses it (a batch never
    // routes an event twice; this only keeps that from becoming an error).
    let mut seen_results = HashSet::new();
    for routing in routings {
        let event = routing.event_id.as_str();
        let Some(&seq) = seqs.get(event) else {
            continue;
        };
        marked.push(seq);
        typed.extend(routing.event_type.as_deref().map(|t| (seq, t)));
        for result in routing.results.iter().filter(|r| takes(event, &r.route)) {
            if seen_results.insert((event, result.route.as_str())) {
                results.push([
                    Some(event.into()),
                    Some(result.route.as_str().into()),
                    Some(result.outcome.as_str().into()),
                    result.detail.as_deref().map(text),
                ]);
            }
        }
        for d in routing.deliveries.iter().filter(|d| takes(event, &d.route)) {
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
    if !marked.is_empty() {
        tx.execute(
            &tx.cached("DELETE FROM unrouted WHERE seq = ANY($1)")
                .await?,
            &[&marked],
        )
        .await?;
    }
    if !typed.is_empty() {
        let (seqs, types): (Vec<i64>, Vec<Cow<str>>) =
            typed.iter().map(|(seq, t)| (*seq, text(t))).unzip();
        let types: Vec<&str> = types.iter().map(|t| t.as_ref()).collect();
        // Upserted: a replay's routing may find another type (the config changed meanwhile).
        tx.execute(
            &tx.cached(
                "INSERT INTO event_types (seq, event_type) \
             SELECT * FROM unnest($1::BIGINT[], $2::TEXT[]) \
             ON CONFLICT (seq) DO UPDATE SET event_type = EXCLUDED.event_type",
            )
            .await?,
            &[&seqs, &types],
        )
        .await?;
    }
    if !results.is_empty() {
        tx.execute(
            &tx.cached("INSERT INTO route_results (event_id, route, outcome, detail) \
             SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[]) \
             ON CONFLICT (event_id, route) DO UPDATE SET outcome = EXCLUDED.outcome, detail = EXCLUDED.detail").await?,
            &[&results.col(0), &results.col(1), &results.col(2), &results.col(3)],
        )
        .await?;
    }
    let recorded = Recorded {
        leased: deliveries.leased(),
        claimable: deliveries.claimable(),
    };
    if !deliveries.is_empty() {
        deliveries.insert(tx, now).await?;
    }
    if !attempts.is_empty() {
        insert_attempts(tx, attempts.into_iter()).await?;
    }
    Ok(recorded)
}

/// What [`record_routing`] wrote.
pub(in crate::store::postgres) struct Recorded {
    /// The leased deliveries written (the caller may hand them over).
    pub leased: Vec<String>,
    /// Whether a claim can take any delivery written (the workers must look).
    pub claimable: bool,
}

/// Ends `owner`'s leases on pending deliveries it will not attempt.
pub(in crate::store::postgres) async fn release_leases(
    c: &Client,
    owner: &str,
    ids: &[String],
) -> Pg<u64> {
    c.execute(
        &c.cached(
            "UPDATE deliveries SET lease_until = 0, lease_owner = NULL \
             WHERE id = ANY($1) AND status = 'pending' AND lease_owner = $2",
        )
        .await?,
        &[&ids, &owner],
    )
    .await
}

/// Leases due deliveries to `owner`. `SKIP LOCKED` passes over rows another instance is leasing
/// right now; rows it leased and committed no longer match until the lease ends or it dies.
pub(in crate::store::postgres) async fn claim(
    c: &Client,
    owner: &str,
    target: &str,
    now: i64,
    limit: usize,
    lease_ms: i64,
) -> Pg<Vec<DueDelivery>> {
    let gone = holder_gone("deliveries.lease_owner");
    let sql = format!(
        "WITH picked AS (SELECT seq FROM deliveries \
           WHERE target = $1 AND status = 'pending' AND next_attempt_at <= $2 \
           AND (lease_until <= $2 OR {gone}) \
           ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED), \
         leased AS (UPDATE deliveries d SET lease_until = $2 + $4, lease_owner = $5 \
           FROM picked WHERE d.seq = picked.seq \
           RETURNING d.seq, d.id, d.event_id, d.body, d.headers, d.attempts, \
           d.created_at, d.next_attempt_at) \
         SELECT l.id, l.event_id, t.event_type, COALESCE(l.body, e.body), l.headers, \
           l.attempts, l.created_at \
         FROM leased l JOIN events e ON e.id = l.event_id \
         LEFT JOIN event_types t ON t.seq = e.seq ORDER BY l.next_attempt_at, l.seq"
    );
    let rows = c
        .query(
            &c.cached(&sql).await?,
            &[&target, &now, &(limit as i64), &lease_ms, &owner],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DueDelivery {
                id: r.try_get(0)?,
                event_id: r.try_get(1)?,
                event_type: r.try_get(2)?,
                body: Bytes::from(r.try_get::<_, Vec<u8>>(3)?),
                headers: pairs_from_json(r.try_get(4)?),
                attempts: r.try_get::<_, i64>(5)? as u32,
                created_at: r.try_get(6)?,
            })
        })
        .collect()
}

/// The earliest due time among `targets`: one index probe per target, in one statement.
pub(in crate::store::postgres) async fn next_due(
    c: &Client,
    now: i64,
    targets: &[String],
) -> Pg<Option<i64>> {
    let gone = holder_gone("deliveries.lease_owner");
    let sql = format!(
        "SELECT MIN(x.at) FROM unnest($1::TEXT[]) AS t(name), LATERAL (\
           SELECT next_attempt_at AS at FROM deliveries \
           WHERE target = t.name AND status = 'pending' AND (lease_until <= $2 OR {gone}) \
           ORDER BY next_attempt_at LIMIT 1) AS x"
    );
    let row = c
        .query_one(&c.cached(&sql).await?, &[&targets, &now])
        .await?;
    row.try_get(0)
}

pub(in crate::store::postgres) async fn unrouted_count(c: &Client) -> Pg<u64> {
    let n: i64 = c
        .query_one(&c.cached("SELECT COUNT(*) FROM unrouted").await?, &[])
        .await?
        .try_get(0)?;
    Ok(n.max(0) as u64)
}

/// Logs attempts and moves their deliveries on, in one transaction's two statements.
///
/// Every attempt is logged, but a delivery moves on only while `owner` still holds its lease: if
/// this instance was taken for dead (a missed heartbeat) and another took the delivery over, that
/// one's outcome stands and this late one (a `dead` after its `succeeded`, say) changes nothing.
pub(in crate::store::postgres) async fn record_attempts(
    tx: &Transaction<'_>,
    owner: &str,
    attempts: &[Attempt],
) -> Pg<()> {
    let ids: Vec<&str> = attempts.iter().map(|a| a.delivery_id.as_str()).collect();
    let numbers: Vec<i64> = attempts.iter().map(|a| i64::from(a.attempt)).collect();
    let errors: Vec<Option<Cow<str>>> = attempts
        .iter()
        .map(|a| a.error.as_deref().map(text))
        .collect();
    let errors: Vec<Option<&str>> = errors.iter().map(|e| e.as_deref()).collect();
    let (statuses, next): (Vec<&str>, Vec<Option<i64>>) = attempts
        .iter()
        .map(|a| {
            let (status, next) = a.after.state();
            (status.as_str(), next)
        })
        .unzip();
    let finished: Vec<i64> = attempts.iter().map(|a| a.finished_at).collect();
    insert_attempts(tx, attempts.iter()).await?;
    // A delivery appears once per batch: its worker awaits each attempt before the next.
    tx.execute(
        &tx.cached("UPDATE deliveries d SET status = u.status, attempts = u.attempt, next_attempt_at = u.next, \
         lease_until = 0, lease_owner = NULL, last_error = u.error, updated_at = u.finished \
         FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::BIGINT[]) \
           AS u(id, status, attempt, next, error, finished) \
         WHERE d.id = u.id AND d.lease_owner = $7").await?,
        &[&ids, &statuses, &numbers, &next, &errors, &finished, &owner],
    )
    .await?;
    Ok(())
}

/// Events with a route waiting for its plugin, for the routes in `routes`, oldest first.
pub(in crate::store::postgres) async fn waiting_routes(
    c: &Client,
    routes: &[String],
    limit: usize,
) -> Pg<Vec<WaitingRoute>> {
    let stmt = c
        .prepare(
            "SELECT e.id, e.source, e.received_at, e.headers, e.query, e.body, e.replays, t.event_type, r.route \
             FROM route_results r JOIN events e ON e.id = r.event_id \
             LEFT JOIN event_types t ON t.seq = e.seq \
             WHERE r.outcome = 'waiting' AND r.route = $1 ORDER BY e.seq LIMIT $2",
        )
        .await?;
    let mut out = Vec::new();
    for route in routes {
        let left = limit.saturating_sub(out.len());
        if left == 0 {
            break;
        }
        for r in c.query(&stmt, &[route, &(left as i64)]).await? {
            out.push(WaitingRoute {
                event: event_row(&r, 0)?,
                event_type: r.try_get(7)?,
                route: r.try_get(8)?,
            });
        }
    }
    Ok(out)
}

/// Logs attempts (their deliveries' state is the caller's), in one statement.
async fn insert_attempts<'a>(
    tx: &Transaction<'_>,
    attempts: impl Iterator<Item = &'a Attempt> + Clone,
) -> Pg<u64> {
    let ids: Vec<&str> = attempts.clone().map(|a| a.delivery_id.as_str()).collect();
    let numbers: Vec<i64> = attempts.clone().map(|a| i64::from(a.attempt)).collect();
    let started: Vec<i64> = attempts.clone().map(|a| a.started_at).collect();
    let durations: Vec<i64> = attempts.clone().map(|a| a.duration_ms).collect();
    let codes: Vec<Option<i64>> = attempts
        .clone()
        .map(|a| a.status_code.map(i64::from))
        .collect();
    let errors: Vec<Option<Cow<str>>> = attempts
        .clone()
        .map(|a| a.error.as_deref().map(text))
        .collect();
    let errors: Vec<Option<&str>> = errors.iter().map(|e| e.as_deref()).collect();
    let headers: Vec<String> = attempts
        .clone()
        .map(|a| pairs_to_json(&a.response_headers))
        .collect();
    let bodies: Vec<&[u8]> = attempts.map(|a| &a.response_body[..]).collect();
    tx.execute(
        &tx.cached("INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code, error, \
         response_headers, response_body) SELECT * FROM unnest($1::TEXT[], $2::BIGINT[], \
         $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::BYTEA[])").await?,
        &[&ids, &numbers, &started, &durations, &codes, &errors, &headers, &bodies],
    )
    .await
}
