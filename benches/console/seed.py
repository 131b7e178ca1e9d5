"""Seeds a migrated hookgate SQLite store with N deliveries (N/4 events): 99.9 % succeeded, one
in 1,000 dead, one in 5,000 failed; two routes and targets (one with a quarter of the traffic).
Used by benches/console/run; plain SQL, so a million rows take seconds."""
import sqlite3
import sys
import time

db = sqlite3.connect(sys.argv[1])
n = int(sys.argv[2])
now = int(time.time() * 1000)
started = time.time()
db.execute(
    """WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?)
    INSERT INTO events (id, source, event_type, received_at, headers, query, body, routed)
    SELECT printf('evt_%012d', i), CASE WHEN i % 10 = 0 THEN 'gh' ELSE 'plain' END,
           CASE WHEN i % 7 = 0 THEN 'push' ELSE 'stack' END, ? - (? - i) * 10, '[]', '[]',
           CAST('{"stack":{"id":"payments-prod"},"state":"FINISHED"}' AS BLOB), 1 FROM c""",
    (n // 4, now, n // 4),
)
db.execute(
    """WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?)
    INSERT INTO deliveries (id, event_id, route, target, status, body, headers, attempts,
                            next_attempt_at, last_error, created_at, updated_at)
    SELECT printf('dlv_%012d', i), printf('evt_%012d', (i + 3) / 4),
           CASE WHEN i % 4 = 0 THEN 'r2' ELSE 'r' END, CASE WHEN i % 4 = 0 THEN 't2' ELSE 't' END,
           CASE WHEN i % 1000 = 0 THEN 'dead' WHEN i % 5000 = 1 THEN 'failed' ELSE 'succeeded' END,
           NULL, '[]', 1, NULL, CASE WHEN i % 1000 = 0 THEN 'HTTP 500' END, ? - (? - i) * 3, ?
    FROM c""",
    (n, now, n, now),
)
db.commit()
print(f"seeded {n} deliveries, {n // 4} events in {time.time() - started:.1f} s", file=sys.stderr)
