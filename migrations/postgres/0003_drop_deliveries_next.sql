-- No statement reads `deliveries_next`: the queue's reads of pending deliveries (claims, the next
-- due time, pending counts) go through `deliveries_due`. Every delivery paid an index entry for it.
DROP INDEX IF EXISTS deliveries_next;
