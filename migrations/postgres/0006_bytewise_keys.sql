-- Two costs SQLite's store does not have, on every event.
--
-- Text keys compared in the database's collation: every entry of a text index (ids, targets,
-- routes) went through the locale's string comparison (`strcoll`, after copying both strings);
-- under "C" it is `memcmp`. Every one of these is an identifier the gateway or the config
-- made, so byte order is the only order they need, and it is the order SQLite gives them
-- (BINARY), so listings sort the same on both stores. Only the collation changes: no table is
-- rewritten, the indexes on these columns are rebuilt.
--
-- `attempts.seq` as a primary key: an index on it is written with every attempt and read by no
-- query (attempts are found by `delivery_id`, in `attempts_delivery`). In SQLite the `seq` is the
-- rowid and costs nothing.
ALTER TABLE events
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN source TYPE TEXT COLLATE "C";
ALTER TABLE event_types
    ALTER COLUMN event_type TYPE TEXT COLLATE "C";
ALTER TABLE route_results
    ALTER COLUMN event_id TYPE TEXT COLLATE "C",
    ALTER COLUMN route TYPE TEXT COLLATE "C",
    ALTER COLUMN outcome TYPE TEXT COLLATE "C";
ALTER TABLE deliveries
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN event_id TYPE TEXT COLLATE "C",
    ALTER COLUMN route TYPE TEXT COLLATE "C",
    ALTER COLUMN target TYPE TEXT COLLATE "C",
    ALTER COLUMN status TYPE TEXT COLLATE "C";
ALTER TABLE attempts
    ALTER COLUMN delivery_id TYPE TEXT COLLATE "C",
    DROP CONSTRAINT attempts_pkey;
ALTER TABLE target_state
    ALTER COLUMN name TYPE TEXT COLLATE "C";
ALTER TABLE plugins
    ALTER COLUMN name TYPE TEXT COLLATE "C";
-- `instances.id` keeps the database's collation: it is compared with the lease holders' columns
-- (`unrouted.owner`, `deliveries.lease_owner`), unindexed, which keep it too.
