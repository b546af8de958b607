-- Roles, key management and webhook signing: an admin may write market data; a user has several
-- labelled keys that may expire and record when they were last used; each user signs webhooks with
-- a secret of their own.
ALTER TABLE users
    ADD COLUMN is_admin boolean NOT NULL DEFAULT false,
    ADD COLUMN webhook_secret text NOT NULL DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');

ALTER TABLE api_keys
    ADD COLUMN label text NOT NULL DEFAULT 'default' CHECK (length(label) BETWEEN 1 AND 100),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN last_used_at timestamptz;
CREATE UNIQUE INDEX api_keys_user_prefix_idx ON api_keys (user_id, key_prefix);
