-- The full schema of the PostgreSQL store, equivalent to migrations/sqlite/0001..0003, plus the
-- routing lease on events that several gateway instances sharing one database need.
-- Applied by src/store/postgres.rs in one transaction under an advisory lock; its version is
-- recorded in schema_migrations.

-- Events as received: the raw body byte for byte, headers and query as JSON arrays of pairs.
CREATE TABLE events (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT    NOT NULL UNIQUE,
    source            TEXT    NOT NULL,
    event_type        TEXT,
    received_at       BIGINT  NOT NULL,             -- unix ms
    headers           TEXT    NOT NULL,
    query             TEXT    NOT NULL,
    body              BYTEA   NOT NULL,
    routed            BOOLEAN NOT NULL DEFAULT FALSE, -- true once every route's outcome is recorded
    -- Unix ms (database clock) until which one instance routes this event; others skip it
    -- (unless that instance stopped beating, see `instances`).
    route_lease_until BIGINT  NOT NULL DEFAULT 0,
    -- The instance holding the routing lease (it may take the event again before the lease ends).
    route_owner       TEXT
);
CREATE INDEX events_unrouted ON events (seq) WHERE NOT routed;
CREATE INDEX events_source ON events (source, seq);

-- What each route made of each event: delivered (n deliveries), filtered, failed (with why), or
-- waiting (its wasm plugin is not uploaded yet; it runs when it arrives).
CREATE TABLE route_results (
    event_id  TEXT NOT NULL,
    route     TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT,
    PRIMARY KEY (event_id, route)
);
CREATE INDEX route_results_waiting ON route_results (route) WHERE outcome = 'waiting';

-- One row per (message, target). body NULL means "the event's body, unchanged".
CREATE TABLE deliveries (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    event_id         TEXT    NOT NULL,
    route            TEXT    NOT NULL,
    target           TEXT    NOT NULL,
    status           TEXT    NOT NULL,         -- pending | succeeded | failed | dead
    body             BYTEA,
    headers          TEXT    NOT NULL,         -- extra headers from the transform, JSON pairs
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,                   -- unix ms, while pending
    lease_until      BIGINT  NOT NULL DEFAULT 0,
    lease_owner      TEXT,                     -- the instance holding the lease
    last_error       TEXT,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (target, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_status ON deliveries (status, seq);
CREATE INDEX deliveries_next ON deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE attempts (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id       TEXT    NOT NULL,
    attempt           BIGINT  NOT NULL,
    started_at        BIGINT  NOT NULL,
    duration_ms       BIGINT  NOT NULL,
    status_code       BIGINT,
    error             TEXT,
    response_headers  TEXT    NOT NULL,
    response_body     BYTEA   NOT NULL
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, attempt);

-- Targets an operator (or a 410 Gone answer) disabled. Their deliveries wait as pending.
CREATE TABLE target_state (
    name        TEXT PRIMARY KEY,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    reason      TEXT,
    updated_at  BIGINT  NOT NULL
);

-- Every running gateway instance, beating on the database's clock every couple of seconds. A lease
-- held by an instance that stopped beating is free at once, whatever its end time: a killed
-- instance's work is taken over in seconds, not after a lease as long as a delivery's timeout.
CREATE TABLE instances (
    id            TEXT   PRIMARY KEY,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);

-- Plugins every instance runs: an upload to one instance is shared here and each instance
-- installs it (validating and compiling for itself). A delete leaves the row with deleted = TRUE,
-- so an instance that was away unloads it too rather than sharing its stale copy again.
CREATE TABLE plugins (
    name         TEXT    PRIMARY KEY,
    sha256       TEXT    NOT NULL,
    bytes        BYTEA,                         -- NULL once deleted
    deleted      BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at   BIGINT  NOT NULL,
    updated_by   TEXT    NOT NULL               -- the instance that uploaded or deleted it
);

-- Config reloads asked of one instance; every other instance re-reads its own config file when
-- the newest generation is one it has not applied.
CREATE TABLE config_reloads (
    generation    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    requested_at  BIGINT NOT NULL,
    requested_by  TEXT   NOT NULL
);
