-- LangGraph crons (schedules of runs) and webhook deliveries.

CREATE TABLE crons (
    cron_id          uuid PRIMARY KEY,
    user_id          bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    assistant_id     text NOT NULL,
    thread_id        uuid,                    -- a thread cron; NULL: a new thread per run (model_id)
    model_id         bigint NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    schedule         text NOT NULL,           -- 5-field cron
    timezone         text NOT NULL,           -- IANA
    end_time         timestamptz,
    enabled          boolean NOT NULL DEFAULT true,
    on_run_completed text NOT NULL DEFAULT 'keep' CHECK (on_run_completed IN ('keep', 'delete')),
    payload          jsonb NOT NULL,          -- the run request: input, config, metadata, webhook, ...
    metadata         jsonb NOT NULL DEFAULT '{}',
    next_run_date    timestamptz,             -- NULL: nothing more to run (ended)
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX crons_user_idx ON crons (user_id, created_at);
CREATE INDEX crons_due_idx ON crons (next_run_date) WHERE enabled;

-- One row per due time that was handled: the run it started, or why none was started.
-- The primary key is what makes each due time start one run, whatever the number of processes.
CREATE TABLE cron_fires (
    cron_id     uuid NOT NULL REFERENCES crons(cron_id) ON DELETE CASCADE,
    due_at      timestamptz NOT NULL,
    run_id      uuid,
    thread_id   uuid,
    outcome     text NOT NULL,               -- started | skipped: why | failed: why
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cron_id, due_at)
);

-- A webhook call per run and event, with its exact body (what the signature covers) and attempts.
CREATE TABLE webhook_deliveries (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    run_id        uuid NOT NULL,
    event         text NOT NULL,             -- run.success | run.error | run.interrupted
    url           text NOT NULL,
    body          text NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    last_status   integer,
    last_error    text,
    delivered_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, event)
);
