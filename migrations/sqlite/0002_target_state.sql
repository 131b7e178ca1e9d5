-- Targets an operator (or a 410 Gone answer) disabled. Their deliveries wait as pending.
CREATE TABLE target_state (
    name        TEXT PRIMARY KEY,
    disabled    INTEGER NOT NULL DEFAULT 0,
    reason      TEXT,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
