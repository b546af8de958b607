-- LangGraph-protocol threads and runs, owned by users, with every streamed event stored.
CREATE TABLE threads (
    thread_id         uuid PRIMARY KEY,
    user_id           bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    model_id          bigint REFERENCES models(id) ON DELETE SET NULL,
    metadata          jsonb NOT NULL DEFAULT '{}',
    status            text NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'busy', 'interrupted', 'error')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    state_updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX threads_user_idx ON threads (user_id, created_at DESC);
CREATE INDEX threads_metadata_idx ON threads USING gin (metadata jsonb_path_ops);

CREATE TABLE runs (
    run_id              uuid PRIMARY KEY,
    thread_id           uuid NOT NULL REFERENCES threads(thread_id) ON DELETE CASCADE,
    user_id             bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    assistant_id        uuid NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'running', 'success', 'error', 'timeout', 'interrupted')),
    metadata            jsonb NOT NULL DEFAULT '{}',
    kwargs              jsonb NOT NULL DEFAULT '{}',
    multitask_strategy  text NOT NULL DEFAULT 'enqueue',
    attempt             integer NOT NULL DEFAULT 0,
    error               jsonb,
    result              jsonb,                  -- final values (with __interrupt__ when paused)
    cancel_action       text CHECK (cancel_action IN ('interrupt', 'rollback')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_thread_idx ON runs (thread_id, created_at DESC);
CREATE INDEX runs_active_idx ON runs (thread_id) WHERE status IN ('pending', 'running');

-- Every SSE event of a run, so any process can serve any stream and rejoins replay exactly.
CREATE TABLE run_events (
    run_id  uuid NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    seq     bigint NOT NULL,
    event   text NOT NULL,
    data    jsonb NOT NULL,
    PRIMARY KEY (run_id, seq)
);
