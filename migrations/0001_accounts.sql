-- Users, their API keys (hashed), and their trading models with per-model risk limits.
CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key_hash    text NOT NULL UNIQUE,          -- sha256 hex of the key; the key itself is never stored
    key_prefix  text NOT NULL,                 -- first characters, to recognise a key in listings
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE models (
    id                    bigserial PRIMARY KEY,
    user_id               bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    signature             text NOT NULL CHECK (signature ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    initial_cash          numeric(20, 4) NOT NULL CHECK (initial_cash > 0 AND initial_cash <= 1e12),
    max_position_pct      numeric(7, 4) NOT NULL DEFAULT 25 CHECK (max_position_pct > 0 AND max_position_pct <= 100),
    max_order_notional    numeric(20, 4) NOT NULL DEFAULT 50000 CHECK (max_order_notional > 0),
    max_trades_per_day    integer NOT NULL DEFAULT 20 CHECK (max_trades_per_day >= 0),
    daily_loss_limit_pct  numeric(7, 4) NOT NULL DEFAULT 5 CHECK (daily_loss_limit_pct > 0 AND daily_loss_limit_pct <= 100),
    approval_notional     numeric(20, 4) CHECK (approval_notional > 0),  -- NULL: never pause
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, signature)
);
CREATE INDEX models_user_idx ON models (user_id);
