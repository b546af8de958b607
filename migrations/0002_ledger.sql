-- The ledger: per-model cash and positions, orders (every risk decision), fills, and equity points.
CREATE TABLE cash_accounts (
    model_id  bigint PRIMARY KEY REFERENCES models(id) ON DELETE CASCADE,
    cash      numeric(20, 4) NOT NULL CHECK (cash >= 0)
);

CREATE TABLE positions (
    model_id  bigint NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    symbol    text NOT NULL,
    quantity  bigint NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (model_id, symbol)
);

-- A trading session is a LangGraph thread bound to one model.
CREATE TABLE sessions (
    thread_id     text PRIMARY KEY,
    model_id      bigint NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    mode          text,
    start_equity  numeric(20, 4),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_model_idx ON sessions (model_id);

-- One row per proposal that reached execute: filled, or rejected with the rule and reason.
CREATE TABLE orders (
    id               bigserial PRIMARY KEY,
    client_order_id  text NOT NULL UNIQUE,
    model_id         bigint NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    thread_id        text NOT NULL,
    bar_time         timestamp NOT NULL,
    symbol           text NOT NULL,
    side             text NOT NULL,
    quantity         numeric NOT NULL,            -- as proposed, so invalid proposals are recorded too
    status           text NOT NULL CHECK (status IN ('filled', 'rejected')),
    rule             text NOT NULL,
    reason           text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_model_idx ON orders (model_id, id);
CREATE INDEX orders_thread_idx ON orders (thread_id, id);

CREATE TABLE fills (
    id         bigserial PRIMARY KEY,
    order_id   bigint NOT NULL UNIQUE REFERENCES orders(id) ON DELETE CASCADE,
    model_id   bigint NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    symbol     text NOT NULL,
    side       text NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity   bigint NOT NULL CHECK (quantity > 0),
    price      numeric(16, 4) NOT NULL CHECK (price > 0),
    notional   numeric(20, 4) NOT NULL,
    bar_time   timestamp NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fills_model_idx ON fills (model_id, id);

-- Mark-to-market after each bar of a session, with the buy-and-hold benchmark beside it.
CREATE TABLE equity_points (
    id         bigserial PRIMARY KEY,
    thread_id  text NOT NULL,
    model_id   bigint NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    bar_time   timestamp NOT NULL,
    equity     numeric(20, 4) NOT NULL,
    benchmark  numeric(20, 4) NOT NULL,
    UNIQUE (thread_id, bar_time)
);
CREATE INDEX equity_points_model_idx ON equity_points (model_id, id);
