-- How many times an event was replayed. A delivery's id is derived from its event's id, this
-- count, its route, its target and its message's position, so routing the same event again after
-- a crash gives the same ids (receivers dedupe on them), while a replay gives new ones.
ALTER TABLE events ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
