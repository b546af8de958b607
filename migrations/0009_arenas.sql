-- Arenas: several bots of one user run the same market at once, one session (thread) each, ranked.
CREATE TABLE arenas (
    arena_id    uuid PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    input       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX arenas_user_idx ON arenas (user_id, created_at DESC);

CREATE TABLE arena_entries (
    arena_id   uuid NOT NULL REFERENCES arenas(arena_id) ON DELETE CASCADE,
    model_id   bigint NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    thread_id  uuid NOT NULL,   -- the session's thread (kept as history if the thread is deleted)
    run_id     uuid NOT NULL,
    PRIMARY KEY (arena_id, model_id)
);
