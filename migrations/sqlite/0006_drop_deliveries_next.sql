-- No statement reads `deliveries_next`: the queue's reads of pending deliveries (claims, the next
-- due time, pending counts) all go through `deliveries_due` (store::sqlite::plans asserts it).
-- Every delivery paid for it twice: an entry on insert, and its removal once it left `pending`.
DROP INDEX IF EXISTS deliveries_next;
