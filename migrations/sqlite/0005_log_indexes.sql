-- Events filtered by type, newest first, without scanning every event (the console's events page,
-- `GET /admin/v1/events?type=…`); and time filters (`since`) on both tables: the first row of the
-- range, found here, bounds `seq` (store::filter). None of these columns changes after insert: an
-- insert's cost only.
CREATE INDEX events_type ON events (event_type, seq);
CREATE INDEX deliveries_created ON deliveries (created_at);
CREATE INDEX events_received ON events (received_at);
