#!/usr/bin/env python3
"""WAL frames the SQLite store writes per event, by how many events share a commit.

Replays the writer's statements for one event's life (insert: the event and its queue row;
routing: the queue row deleted, a route result, a delivery; the attempt: its row and the delivery's
update) on a store migrated with
migrations/sqlite/, in three commits as the gateway makes them, and prints the WAL pages written
per event. Every index leaf a commit touches is written whole, so few events per commit cost many
frames each.

    python3 benches/sqlite/frames.py [EVENTS_PER_COMMIT ...]     (default: 5 20 100)
"""
import json
import os
import sqlite3
import sys
import tempfile
import time

MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "migrations", "sqlite")
FRAME = 4096 + 24  # page size plus frame header
BATCHES, WARM_UP = 300, 100


def frames_per_event(per_commit, folder):
    db = os.path.join(folder, f"frames-{per_commit}.db")
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA wal_autocheckpoint=0")  # the WAL only grows: its size counts the frames
    for name in sorted(os.listdir(MIGRATIONS)):
        with open(os.path.join(MIGRATIONS, name)) as f:
            c.executescript(f.read())
    body = os.urandom(750).hex().encode()  # ~1.5 KB, as the load benchmark's events
    headers = json.dumps([["content-type", "application/json"], ["user-agent", "bench"],
                          ["x-signature", "sha256=" + "a" * 64], ["content-length", "1500"]])
    seq = [0]

    def new_id(prefix):  # time-ordered, as the gateway's ULIDs
        seq[0] += 1
        return f"{prefix}_{int(time.time() * 1000):013d}{seq[0]:013d}"

    def wal():
        return os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0

    written = {"insert": 0, "routing": 0, "attempt": 0}

    def commit(stage, statements):
        before = wal()
        c.execute("BEGIN")
        statements()
        c.execute("COMMIT")
        written[stage] += wal() - before

    for batch in range(BATCHES):
        if batch == WARM_UP:
            written = dict.fromkeys(written, 0)
        now = int(time.time() * 1000)
        events = [new_id("evt") for _ in range(per_commit)]
        deliveries = [new_id("dlv") for _ in events]
        def insert():
            for e in events:
                c.execute("INSERT INTO events (id, source, received_at, headers, query, body) VALUES (?,?,?,?,?,?)",
                          (e, "bench", now, headers, "[]", body))
                c.execute("INSERT INTO unrouted (seq) VALUES (last_insert_rowid())")
        commit("insert", insert)

        def routing():
            for e, d in zip(events, deliveries):
                c.execute("DELETE FROM unrouted WHERE seq = (SELECT seq FROM events WHERE id = ?1 AND replays = 0) "
                          "RETURNING seq", (e,)).fetchall()
                c.execute("INSERT OR REPLACE INTO route_results (event_id, route, outcome, detail) VALUES (?,?,?,?)",
                          (e, "r", "delivered", None))
                c.execute("INSERT INTO deliveries (id, event_id, route, target, status, body, headers, next_attempt_at, "
                          "last_error, created_at, updated_at, lease_until) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?10,?11)",
                          (d, e, "r", "t", "pending", b'{"seq":1,"stack":"s","state":"FINISHED"}', "[]", now, None,
                           now, now + 30000))
        commit("routing", routing)

        def attempts():
            for d in deliveries:
                c.execute("INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code, error, "
                          "response_headers, response_body) VALUES (?,?,?,?,?,?,?,?)",
                          (d, 1, now, 1, 200, None, '[["content-length","2"]]', b"ok"))
                c.execute("UPDATE deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, lease_until = 0, "
                          "last_error = ?5, updated_at = ?6 WHERE id = ?1", (d, "succeeded", 1, None, None, now))
        commit("attempt", attempts)
    c.close()
    n = (BATCHES - WARM_UP) * per_commit
    return {k: v / FRAME / n for k, v in written.items()}


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [5, 20, 100]
    print(f"{'events per commit':>17} {'insert':>7} {'routing':>8} {'attempt':>8} {'total':>7}  (WAL frames per event)")
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            f = frames_per_event(n, folder)
            print(f"{n:>17} {f['insert']:>7.2f} {f['routing']:>8.2f} {f['attempt']:>8.2f} {sum(f.values()):>7.2f}")


if __name__ == "__main__":
    main()
