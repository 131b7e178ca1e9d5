-- The delivery log filtered by target or route, newest first, without scanning every delivery
-- (the console and `GET /admin/v1/deliveries?target=…`). Neither column changes after insert, so
-- these cost an insert, never an update.
CREATE INDEX deliveries_target ON deliveries (target, seq);
CREATE INDEX deliveries_route ON deliveries (route, seq);
