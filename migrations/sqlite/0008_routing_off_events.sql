-- An event's row is written once, as on PostgreSQL (its migration 0005). Routing used to mark it
-- (`routed`, `event_type`), and SQLite rewrote the row's whole page (bodies are most of a page)
-- in the routing's commit: in a closed loop, about a quarter of what the gateway wrote to disk per
-- event (13.2 KB then, 10.2 KB now; BENCHMARKS.md).
-- What routing changes now lives in two narrow tables keyed by the event's `seq`:
--
-- * `unrouted`: one row per event waiting to be routed. The statement that stores an event adds
--   it (trigger `events_unrouted`), as does the one that replays an event (`events_replayed`), so
--   an event is never stored or replayed without its place in the queue; the routing's commit
--   deletes it.
-- * `event_types`: the type the routing found, for events that have one.
CREATE TABLE unrouted (
    seq  INTEGER PRIMARY KEY                    -- events.seq
);
INSERT INTO unrouted (seq) SELECT seq FROM events WHERE routed = 0;
CREATE TRIGGER events_unrouted AFTER INSERT ON events
    BEGIN INSERT INTO unrouted (seq) VALUES (new.seq); END;
CREATE TRIGGER events_replayed AFTER UPDATE OF replays ON events
    BEGIN INSERT OR IGNORE INTO unrouted (seq) VALUES (new.seq); END;

CREATE TABLE event_types (
    seq         INTEGER PRIMARY KEY,            -- events.seq
    event_type  TEXT    NOT NULL
);
INSERT INTO event_types (seq, event_type)
    SELECT seq, event_type FROM events WHERE event_type IS NOT NULL;
CREATE INDEX event_types_type ON event_types (event_type, seq);

-- The old columns stay, unread: SQLite drops a column by rewriting every row, which on a large
-- store would hold the first start for minutes and need the table's size again in free disk. Rows
-- stored from now on keep their defaults there (`routed` 0, `event_type` NULL).
DROP INDEX events_unrouted;
DROP INDEX events_type;
