-- Events as received: the raw body byte for byte, headers and query as JSON arrays of pairs.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    source       TEXT    NOT NULL,
    event_type   TEXT,
    received_at  INTEGER NOT NULL,            -- unix ms
    headers      TEXT    NOT NULL,
    query        TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    routed       INTEGER NOT NULL DEFAULT 0   -- 1 once every route's outcome is recorded
);
CREATE INDEX events_unrouted ON events (seq) WHERE routed = 0;
CREATE INDEX events_source ON events (source, seq);

-- What each route made of each event: delivered (n deliveries), filtered, or failed (with why).
CREATE TABLE route_results (
    event_id  TEXT NOT NULL,
    route     TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT,
    PRIMARY KEY (event_id, route)
) WITHOUT ROWID;

-- One row per (message, target). body NULL means "the event's body, unchanged".
CREATE TABLE deliveries (
    seq              INTEGER PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    event_id         TEXT    NOT NULL,
    route            TEXT    NOT NULL,
    target           TEXT    NOT NULL,
    status           TEXT    NOT NULL,         -- pending | succeeded | failed | dead
    body             BLOB,
    headers          TEXT    NOT NULL,         -- extra headers from the transform, JSON pairs
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,                  -- unix ms, while pending
    lease_until      INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (target, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_status ON deliveries (status, seq);
CREATE INDEX deliveries_next ON deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE attempts (
    seq               INTEGER PRIMARY KEY,
    delivery_id       TEXT    NOT NULL,
    attempt           INTEGER NOT NULL,
    started_at        INTEGER NOT NULL,
    duration_ms       INTEGER NOT NULL,
    status_code       INTEGER,
    error             TEXT,
    response_headers  TEXT    NOT NULL,
    response_body     BLOB    NOT NULL
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, attempt);
