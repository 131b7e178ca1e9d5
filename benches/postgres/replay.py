#!/usr/bin/env python3
"""The PostgreSQL server's CPU per event for the store's statements, without the gateway.

Replays one event's life as the PostgreSQL store writes it, for batches of events sharing each
statement (`unnest` arrays, as `src/store/postgres/queries/queue.rs` binds them): the insert; the
routing (the events locked and marked routed, a route result, a delivery); a claim for the
deliveries not handed over in memory (three in four, as in the load bench's closed loop); the
attempt (its row, and the delivery's outcome). It runs on a fresh database migrated with
migrations/postgres/, then prints the server processes' CPU per event (from /proc, so the server
must run on this machine), the wall time per phase, and the HOT share of updates.

Variants change the schema or the statements, to weigh a redesign before building it:

    now         the schema and statements as they are
    events      an event's routing state (routed, type, lease) in a narrow row of its own
    deliveries  a delivery's changing state (status, due time, lease, outcome) in a narrow row
    both        both of the above
    cte         today's schema, each transaction's statements as one statement (fewer round trips)
    lean        today's schema without the six indexes behind the delivery log's filters

    pip install "psycopg[binary]"
    python3 benches/postgres/replay.py postgres://postgres@127.0.0.1:PORT/postgres \\
        [--variant now ...] [--events 30000] [--per-batch 20 ...]
"""
import argparse
import glob
import json
import os
import time
import uuid

import psycopg

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "migrations", "postgres")
CLAIMED = 0.75  # deliveries that go through a store claim; the rest are handed over in memory
OWNER = "instance-1"
LEASE_MS = 30_000

EVENTS_NARROW = """
DROP INDEX events_unrouted; DROP INDEX events_type;
ALTER TABLE events DROP COLUMN routed, DROP COLUMN route_lease_until, DROP COLUMN route_owner,
  DROP COLUMN event_type;
CREATE TABLE event_routing (seq BIGINT PRIMARY KEY, routed BOOLEAN NOT NULL DEFAULT FALSE,
  event_type TEXT, route_lease_until BIGINT NOT NULL DEFAULT 0, route_owner TEXT);
CREATE INDEX event_routing_unrouted ON event_routing (seq) WHERE NOT routed;
CREATE INDEX event_routing_type ON event_routing (event_type, seq);"""

DELIVERIES_NARROW = """
DROP INDEX deliveries_due; DROP INDEX deliveries_status;
ALTER TABLE deliveries DROP COLUMN status, DROP COLUMN attempts, DROP COLUMN next_attempt_at,
  DROP COLUMN lease_until, DROP COLUMN lease_owner, DROP COLUMN last_error, DROP COLUMN updated_at;
CREATE TABLE delivery_state (seq BIGINT PRIMARY KEY, target TEXT NOT NULL, status TEXT NOT NULL,
  attempts BIGINT NOT NULL DEFAULT 0, next_attempt_at BIGINT, lease_until BIGINT NOT NULL DEFAULT 0,
  lease_owner TEXT, last_error TEXT, updated_at BIGINT NOT NULL);
CREATE INDEX delivery_state_due ON delivery_state (target, next_attempt_at) WHERE status = 'pending';
CREATE INDEX delivery_state_status ON delivery_state (status, seq);"""

LEAN = """
DROP INDEX deliveries_created; DROP INDEX events_received; DROP INDEX deliveries_route;
DROP INDEX deliveries_target; DROP INDEX events_type; DROP INDEX events_source;"""

DELIVERY_COLUMNS = "id, event_id, route, target, status, body, headers, nx, err, lease_until, lease_owner"
DELIVERY_ARRAYS = ("unnest(%s::TEXT[], %s::TEXT[], %s::TEXT[], %s::TEXT[], %s::TEXT[], %s::BYTEA[], "
                   "%s::TEXT[], %s::BIGINT[], %s::TEXT[], %s::BIGINT[], %s::TEXT[]) "
                   f"AS u({DELIVERY_COLUMNS})")
ATTEMPT_INSERT = """INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code,
  error, response_headers, response_body) SELECT * FROM unnest(%s::TEXT[], %s::BIGINT[],
  %s::BIGINT[], %s::BIGINT[], %s::BIGINT[], %s::TEXT[], %s::TEXT[], %s::BYTEA[])"""
OUTCOMES = """unnest(%s::TEXT[], %s::TEXT[], %s::BIGINT[], %s::BIGINT[], %s::TEXT[], %s::BIGINT[])
  AS u(id, status, attempt, next, error, finished)"""
OUTCOME_SET = """status = u.status, attempts = u.attempt, next_attempt_at = u.next, lease_until = 0,
  lease_owner = NULL, last_error = u.error, updated_at = u.finished"""


def now_ms():
    return int(time.time() * 1000)


class Replay:
    def __init__(self, conn, variant, per_batch):
        self.c, self.n = conn, per_batch
        self.events_narrow = variant in ("events", "both")
        self.deliveries_narrow = variant in ("deliveries", "both")
        self.cte = variant == "cte"
        self.body = os.urandom(750).hex().encode()  # ~1.5 KB, as the load bench's events
        self.headers = json.dumps([["content-type", "application/json"], ["user-agent", "bench"],
                                   ["x-signature", "sha256=" + "a" * 64]])
        self.delivery_body = b'{"seq":1,"stack":"s","state":"FINISHED","delta":{"added":1}}'
        self.wall = dict.fromkeys(["insert", "routing", "claim", "attempt"], 0.0)

    def batch(self):
        n = self.n
        events = [f"evt_{uuid.uuid4().hex}" for _ in range(n)]
        deliveries = [f"dlv_{uuid.uuid4().hex}" for _ in range(n)]
        for phase, run in (("insert", lambda: self.insert(events)),
                           ("routing", lambda: self.routing(events, deliveries)),
                           ("claim", self.claim),
                           ("attempt", lambda: self.attempt(deliveries))):
            start = time.perf_counter()
            run()
            self.wall[phase] += time.perf_counter() - start

    def insert(self, ids):
        n, t = self.n, now_ms()
        columns = (ids, ["bench"] * n, [t] * n, [self.headers] * n, ["[]"] * n, [self.body] * n)
        arrays = "unnest(%s::TEXT[], %s::TEXT[], %s::BIGINT[], %s::TEXT[], %s::TEXT[], %s::BYTEA[]) AS u"
        if self.events_narrow:
            self.c.execute(f"""WITH ins AS (INSERT INTO events (id, source, received_at, headers, query, body)
              SELECT * FROM {arrays} RETURNING seq)
              INSERT INTO event_routing (seq, route_owner, route_lease_until) SELECT seq, %s, %s FROM ins""",
                           (*columns, OWNER, t + LEASE_MS))
        else:
            self.c.execute(f"""INSERT INTO events (id, source, received_at, headers, query, body, route_owner,
              route_lease_until) SELECT u.*, %s, %s FROM {arrays}""", (OWNER, t + LEASE_MS, *columns))

    def routing(self, ids, dids):
        n, t = self.n, now_ms()
        leased = [i >= n * CLAIMED for i in range(n)]
        types = ["spacelift.run"] * n
        results = (ids, ["r"] * n, ["delivered"] * n, [None] * n)
        result_insert = """INSERT INTO route_results (event_id, route, outcome, detail)
          SELECT u.e, u.r, u.o, u.d FROM unnest(%s::TEXT[], %s::TEXT[], %s::TEXT[], %s::TEXT[]) AS u(e, r, o, d)"""
        upsert = " ON CONFLICT (event_id, route) DO UPDATE SET outcome = EXCLUDED.outcome, detail = EXCLUDED.detail"
        rows = (dids, ids, ["r"] * n, ["t"] * n, ["pending"] * n, [self.delivery_body] * n, ["[]"] * n,
                [t] * n, [None] * n, [t + LEASE_MS if l else 0 for l in leased],
                [OWNER if l else None for l in leased])
        if self.cte:
            self.c.execute(f"""WITH locked AS (SELECT id FROM events WHERE id = ANY(%s) AND NOT routed
                ORDER BY id FOR UPDATE),
              marked AS (UPDATE events e SET routed = TRUE, event_type = u.t, route_lease_until = 0,
                route_owner = NULL FROM unnest(%s::TEXT[], %s::TEXT[]) AS u(id, t), locked l
                WHERE e.id = u.id AND l.id = u.id RETURNING e.id),
              results AS ({result_insert} JOIN locked l ON l.id = u.e {upsert}),
              dl AS (INSERT INTO deliveries (id, event_id, route, target, status, body, headers,
                next_attempt_at, last_error, lease_until, lease_owner, created_at, updated_at)
                SELECT u.*, %s, %s FROM {DELIVERY_ARRAYS} JOIN locked l ON l.id = u.event_id)
              SELECT id FROM marked""", (ids, ids, types, *results, t, t, *rows)).fetchall()
            return
        with self.c.transaction():
            if self.events_narrow:
                self.c.execute("""SELECT e.id, r.routed FROM events e JOIN event_routing r ON r.seq = e.seq
                  WHERE e.id = ANY(%s) ORDER BY e.id FOR UPDATE OF r""", (ids,)).fetchall()
                self.c.execute("""UPDATE event_routing r SET routed = TRUE, event_type = u.t,
                  route_lease_until = 0, route_owner = NULL FROM events e,
                  unnest(%s::TEXT[], %s::TEXT[]) AS u(id, t) WHERE e.id = u.id AND r.seq = e.seq""", (ids, types))
            else:
                self.c.execute("SELECT id, routed FROM events WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                               (ids,)).fetchall()
                self.c.execute("""UPDATE events e SET routed = TRUE, event_type = u.t, route_lease_until = 0,
                  route_owner = NULL FROM unnest(%s::TEXT[], %s::TEXT[]) AS u(id, t) WHERE e.id = u.id""",
                               (ids, types))
            self.c.execute(result_insert + upsert, results)
            if self.deliveries_narrow:
                self.c.execute(f"""WITH ins AS (INSERT INTO deliveries (id, event_id, route, target, body,
                    headers, created_at) SELECT u.id, u.event_id, u.route, u.target, u.body, u.headers, %s
                    FROM {DELIVERY_ARRAYS} RETURNING seq, id)
                  INSERT INTO delivery_state (seq, target, status, next_attempt_at, lease_until, lease_owner,
                    updated_at) SELECT ins.seq, 't', 'pending', %s, l.until, l.owner, %s
                  FROM ins JOIN unnest(%s::TEXT[], %s::BIGINT[], %s::TEXT[]) AS l(id, until, owner)
                    ON l.id = ins.id""", (t, *rows, t, t, dids, rows[9], rows[10]))
            else:
                self.c.execute(f"""INSERT INTO deliveries (id, event_id, route, target, status, body, headers,
                  next_attempt_at, last_error, lease_until, lease_owner, created_at, updated_at)
                  SELECT u.*, %s, %s FROM {DELIVERY_ARRAYS}""", (t, t, *rows))

    def claim(self):
        t = now_ms() + 1
        if not (self.deliveries_narrow or self.events_narrow):  # the store's statement as it is
            self.c.execute("""WITH picked AS (SELECT seq FROM deliveries WHERE target = 't'
                AND status = 'pending' AND next_attempt_at <= %s AND lease_until <= %s
                ORDER BY next_attempt_at LIMIT 64 FOR UPDATE SKIP LOCKED),
              leased AS (UPDATE deliveries d SET lease_until = %s, lease_owner = %s FROM picked
                WHERE d.seq = picked.seq RETURNING d.seq, d.id, d.event_id, d.body, d.headers,
                d.attempts, d.created_at, d.next_attempt_at)
              SELECT l.id, l.event_id, e.event_type, COALESCE(l.body, e.body), l.headers, l.attempts,
                l.created_at FROM leased l JOIN events e ON e.id = l.event_id
              ORDER BY l.next_attempt_at, l.seq""", (t, t, t + LEASE_MS, OWNER)).fetchall()
            return
        table = "delivery_state" if self.deliveries_narrow else "deliveries"
        picked = f"""WITH picked AS (SELECT seq FROM {table} WHERE target = 't' AND status = 'pending'
            AND next_attempt_at <= %s AND lease_until <= %s ORDER BY next_attempt_at LIMIT 64
            FOR UPDATE SKIP LOCKED),
          leased AS (UPDATE {table} s SET lease_until = %s, lease_owner = %s FROM picked
            WHERE s.seq = picked.seq RETURNING s.seq, s.attempts)"""
        event_type = "r.event_type" if self.events_narrow else "e.event_type"
        routing_join = "JOIN event_routing r ON r.seq = e.seq" if self.events_narrow else ""
        self.c.execute(f"""{picked} SELECT d.id, d.event_id, {event_type}, COALESCE(d.body, e.body),
            d.headers, l.attempts, d.created_at
          FROM leased l JOIN deliveries d ON d.seq = l.seq JOIN events e ON e.id = d.event_id {routing_join}""",
                       (t, t, t + LEASE_MS, OWNER)).fetchall()

    def attempt(self, dids):
        n, t = self.n, now_ms()
        attempts = (dids, [1] * n, [t] * n, [1] * n, [200] * n, [None] * n,
                    ['[["content-length","2"]]'] * n, [b"ok"] * n)
        outcomes = (dids, ["succeeded"] * n, [1] * n, [None] * n, [None] * n, [t] * n, OWNER)
        if self.deliveries_narrow:
            update = f"""UPDATE delivery_state s SET {OUTCOME_SET} FROM deliveries d, {OUTCOMES}
              WHERE d.id = u.id AND s.seq = d.seq AND s.lease_owner = %s"""
        else:
            update = f"UPDATE deliveries d SET {OUTCOME_SET} FROM {OUTCOMES} WHERE d.id = u.id AND d.lease_owner = %s"
        if self.cte:
            self.c.execute(f"WITH a AS ({ATTEMPT_INSERT}) {update}", (*attempts, *outcomes))
            return
        with self.c.transaction():
            self.c.execute(ATTEMPT_INSERT, attempts)
            self.c.execute(update, outcomes)


def server_ticks():
    """CPU ticks of every process named postgres on this machine (the server and its workers)."""
    total = 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                s = f.read()
        except OSError:
            continue
        if s[s.index("(") + 1:s.rindex(")")].startswith("postgres"):
            fields = s[s.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
    return total


def run(url, variant, events, per_batch):
    admin = psycopg.connect(url, autocommit=True)
    db = f"hookgate_replay_{variant}_{os.getpid()}"
    admin.execute(f"CREATE DATABASE {db}")
    try:
        with psycopg.connect(url.rsplit("/", 1)[0] + "/" + db, autocommit=True) as c:
            # The statements below are those of the schema before migration 0005 took the routing
            # state off `events` (what the load bench measured of that is in BENCHMARKS.md).
            for name in sorted(n for n in os.listdir(MIGRATIONS) if n < "0005"):
                with open(os.path.join(MIGRATIONS, name)) as f:
                    c.execute(f.read())
            replay = Replay(c, variant, per_batch)
            for change, applies in ((EVENTS_NARROW, replay.events_narrow),
                                    (DELIVERIES_NARROW, replay.deliveries_narrow), (LEAN, variant == "lean")):
                if applies:
                    c.execute(change)
            batches = max(events // per_batch, 10)
            # Warm-up: statements prepared, and past the first automatic ANALYZE. Until then the
            # cached generic plans were made on near-empty tables, and some scan them whole.
            for _ in range(max(batches // 10, 10_000 // per_batch)):
                replay.batch()
            replay.wall = dict.fromkeys(replay.wall, 0.0)
            ticks = server_ticks()
            for _ in range(batches):
                replay.batch()
            ticks = server_ticks() - ticks
            counted = batches * per_batch
            updates = c.execute("SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                                "WHERE n_tup_upd > 0 ORDER BY relname").fetchall()
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.close()
    server = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / counted
    phases = " ".join(f"{k} {v * 1e6 / counted:5.1f}" for k, v in replay.wall.items())
    hot = " ".join(f"{t} {100 * h // max(u, 1)}%" for t, u, h in updates)
    print(f"{per_batch:>5} {variant:>10} {server:8.1f}   {phases}   {hot}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("url", help="a PostgreSQL server on this machine (a database is made and dropped)")
    variants = ["now", "events", "deliveries", "both", "cte", "lean"]
    p.add_argument("--variant", nargs="+", default=variants, choices=variants)
    p.add_argument("--events", type=int, default=30_000)
    p.add_argument("--per-batch", type=int, nargs="+", default=[20, 100])
    a = p.parse_args()
    with psycopg.connect(a.url, autocommit=True) as c:
        start = time.perf_counter()
        for _ in range(2000):
            c.execute("SELECT 1").fetchall()
        print(f"a bare round trip (SELECT 1): {(time.perf_counter() - start) / 2000 * 1e6:.0f} µs")
    print("batch    variant   server µs/event   wall µs/event by phase   HOT share of updates")
    for per_batch in a.per_batch:
        for variant in a.variant:
            run(a.url, variant, a.events, per_batch)


if __name__ == "__main__":
    main()
