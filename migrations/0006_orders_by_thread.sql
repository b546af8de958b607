-- Nodes read the ledger as of their bar: a session's own orders from a bar on are found by thread and bar.
CREATE INDEX orders_thread_bar_idx ON orders (thread_id, bar_time);
