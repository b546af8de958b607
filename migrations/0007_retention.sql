-- Retention: a thread's time to live (langgraph-api's `ttl`), and when its checkpoints were last pruned.
ALTER TABLE threads
    ADD COLUMN ttl_minutes   double precision CHECK (ttl_minutes > 0),
    ADD COLUMN ttl_strategy  text CHECK (ttl_strategy IN ('delete', 'keep_latest')),
    ADD COLUMN pruned_at     timestamptz,
    ADD CONSTRAINT threads_ttl_whole CHECK ((ttl_minutes IS NULL) = (ttl_strategy IS NULL));

-- The sweep looks at threads with a time to live, and at settled threads by last activity.
CREATE INDEX threads_ttl_idx ON threads (updated_at) WHERE ttl_minutes IS NOT NULL;
CREATE INDEX threads_settled_idx ON threads (updated_at) WHERE status IN ('idle', 'error');

-- Finished runs whose stored stream events are due to go.
CREATE INDEX runs_finished_idx ON runs (updated_at) WHERE status NOT IN ('pending', 'running');
