-- The delivery log filtered by target or route, and events by type, newest first, without
-- scanning every row (the console and `GET /admin/v1/deliveries?target=…`). None of these columns
-- changes after insert, so each index costs an insert, never an update. A plain CREATE INDEX (a
-- migration runs in one transaction, where CONCURRENTLY is not allowed) holds off writes while it
-- builds: seconds for a million deliveries.
CREATE INDEX IF NOT EXISTS deliveries_target ON deliveries (target, seq);
CREATE INDEX IF NOT EXISTS deliveries_route ON deliveries (route, seq);
CREATE INDEX IF NOT EXISTS events_type ON events (event_type, seq);
-- Time filters (`since`): the first row of the range, which bounds `seq` (store::filter).
CREATE INDEX IF NOT EXISTS deliveries_created ON deliveries (created_at);
CREATE INDEX IF NOT EXISTS events_received ON events (received_at);
