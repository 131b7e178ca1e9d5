-- An event's row is written once. Routing used to mark it (`routed`, `event_type`, the lease
-- cleared), and that UPDATE could never be HOT (`routed` is in the predicate of `events_unrouted`,
-- `event_type` in `events_type`): PostgreSQL wrote a second copy of the row, body included, and an
-- entry in each of the table's indexes. It was the costliest statement per event (BENCHMARKS.md).
-- Now what routing changes lives in two narrow tables keyed by the event's `seq`:
--
-- * `unrouted`: one row per event waiting to be routed, with its routing lease. Ingress inserts it
--   with the event; the routing's commit deletes it; a replay inserts it again.
-- * `event_types`: the type the routing found, for events that have one.
CREATE TABLE unrouted (
    seq          BIGINT PRIMARY KEY,            -- events.seq
    -- Unix ms (database clock) until which one instance routes this event; others skip it
    -- (unless that instance stopped beating, see `instances`).
    lease_until  BIGINT NOT NULL DEFAULT 0,
    owner        TEXT                           -- the instance holding the lease
-- Every row is deleted soon after it is inserted, so the table's last pages empty out again and
-- again; truncating them takes an exclusive lock that holds up ingress (tens of ms at p99).
) WITH (vacuum_truncate = false);
INSERT INTO unrouted (seq, lease_until, owner)
    SELECT seq, route_lease_until, route_owner FROM events WHERE NOT routed;

CREATE TABLE event_types (
    seq         BIGINT PRIMARY KEY,             -- events.seq
    event_type  TEXT   NOT NULL
);
INSERT INTO event_types (seq, event_type)
    SELECT seq, event_type FROM events WHERE event_type IS NOT NULL;
CREATE INDEX event_types_type ON event_types (event_type, seq);

DROP INDEX events_unrouted;
DROP INDEX events_type;
ALTER TABLE events DROP COLUMN routed, DROP COLUMN event_type,
    DROP COLUMN route_lease_until, DROP COLUMN route_owner;
