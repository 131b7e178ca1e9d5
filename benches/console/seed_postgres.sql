-- The PostgreSQL twin of seed.py (same rows, same spread): psql -v n=N -f seed_postgres.sql.
\set ON_ERROR_STOP on
SELECT (extract(epoch FROM now()) * 1000)::bigint AS now \gset
INSERT INTO events (id, source, event_type, received_at, headers, query, body, routed)
  SELECT 'evt_' || lpad(i::text, 12, '0'), CASE WHEN i % 10 = 0 THEN 'gh' ELSE 'plain' END,
         CASE WHEN i % 7 = 0 THEN 'push' ELSE 'stack' END, :now - (:n / 4 - i) * 10, '[]', '[]',
         convert_to('{"stack":{"id":"payments-prod"},"state":"FINISHED"}', 'UTF8'), TRUE
  FROM generate_series(1, :n / 4) i;
INSERT INTO deliveries (id, event_id, route, target, status, body, headers, attempts,
                        next_attempt_at, last_error, created_at, updated_at)
  SELECT 'dlv_' || lpad(i::text, 12, '0'), 'evt_' || lpad(((i + 3) / 4)::text, 12, '0'),
         CASE WHEN i % 4 = 0 THEN 'r2' ELSE 'r' END, CASE WHEN i % 4 = 0 THEN 't2' ELSE 't' END,
         CASE WHEN i % 1000 = 0 THEN 'dead' WHEN i % 5000 = 1 THEN 'failed' ELSE 'succeeded' END,
         NULL, '[]', 1, NULL, CASE WHEN i % 1000 = 0 THEN 'HTTP 500' END, :now - (:n - i) * 3, :now
  FROM generate_series(1, :n) i;
ANALYZE;
