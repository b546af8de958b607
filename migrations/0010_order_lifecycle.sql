-- Orders like a broker's: order types, time in force, resting orders evaluated bar by bar, partial
-- fills, brackets (one-cancels-other exits), short positions, commissions and borrow fees.
-- Every write is exactly-once: orders by client_order_id, fills by (order, bar), order evaluations
-- by a compare-and-set of `evaluated_at`, borrow fees by their fee key.

-- Per-bot trading terms and the new risk limits.
ALTER TABLE models
    ADD COLUMN shorting  jsonb,   -- {"enabled", "borrow_rate_pct", "initial_margin_pct", "maintenance_margin_pct"}
    ADD COLUMN costs     jsonb,   -- {"commission_per_share", "commission_min", "commission_pct", "slippage_bps"}
    ADD COLUMN execution jsonb,   -- {"max_volume_pct"}
    ADD COLUMN strategy  jsonb,   -- {"take_profit_pct", "stop_loss_pct"}: brackets of the rule decider
    ADD COLUMN max_gross_exposure_pct numeric(9, 4) NOT NULL DEFAULT 200
        CHECK (max_gross_exposure_pct > 0 AND max_gross_exposure_pct <= 1000),
    ADD COLUMN max_net_exposure_pct numeric(9, 4) NOT NULL DEFAULT 100
        CHECK (max_net_exposure_pct > 0 AND max_net_exposure_pct <= 1000),
    ADD COLUMN max_short_exposure_pct numeric(9, 4) NOT NULL DEFAULT 50
        CHECK (max_short_exposure_pct >= 0 AND max_short_exposure_pct <= 1000),
    ADD COLUMN max_open_orders integer NOT NULL DEFAULT 20 CHECK (max_open_orders >= 0),
    ADD COLUMN price_band_pct numeric(9, 4) NOT NULL DEFAULT 20
        CHECK (price_band_pct > 0 AND price_band_pct <= 100);

-- Shorts are negative positions; a cover may leave a debit. record_order's checks replace the CHECKs.
ALTER TABLE positions DROP CONSTRAINT positions_quantity_check;
ALTER TABLE cash_accounts DROP CONSTRAINT cash_accounts_cash_check;

ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders
    ADD CONSTRAINT orders_status_check
        CHECK (status IN ('open', 'partially_filled', 'filled', 'cancelled', 'expired', 'rejected')),
    ADD COLUMN order_type text NOT NULL DEFAULT 'market'
        CHECK (order_type IN ('market', 'limit', 'stop', 'stop_limit', 'trailing_stop')),
    ADD COLUMN time_in_force text NOT NULL DEFAULT 'day' CHECK (time_in_force IN ('day', 'gtc')),
    ADD COLUMN limit_price numeric(16, 4),
    ADD COLUMN stop_price numeric(16, 4),
    ADD COLUMN trail_percent numeric(7, 4),
    ADD COLUMN trail_anchor numeric(16, 4),      -- high-water (sell) or low-water (buy) mark of a trailing stop
    ADD COLUMN triggered boolean NOT NULL DEFAULT false,  -- a stop-limit whose stop was reached
    ADD COLUMN good_for date,                    -- a day order's trading day; NULL for gtc
    ADD COLUMN take_profit numeric(16, 4),       -- bracket exits, placed when the entry fills
    ADD COLUMN stop_loss numeric(16, 4),
    ADD COLUMN stop_loss_limit numeric(16, 4),
    ADD COLUMN parent_id bigint REFERENCES orders(id) ON DELETE CASCADE,
    ADD COLUMN leg text CHECK (leg IN ('take_profit', 'stop_loss')),
    ADD COLUMN filled_quantity bigint NOT NULL DEFAULT 0,
    ADD COLUMN evaluated_at timestamp;           -- the last bar this order was placed at or evaluated against
UPDATE orders o SET evaluated_at = o.bar_time,
                    filled_quantity = COALESCE((SELECT f.quantity FROM fills f WHERE f.order_id = o.id), 0);
CREATE INDEX orders_open_idx ON orders (model_id) WHERE status IN ('open', 'partially_filled');

-- A fill per order and bar: partial fills of one order land on different bars.
ALTER TABLE fills DROP CONSTRAINT fills_order_id_key;
ALTER TABLE fills
    ADD CONSTRAINT fills_order_bar_key UNIQUE (order_id, bar_time),
    ADD COLUMN commission numeric(20, 4) NOT NULL DEFAULT 0 CHECK (commission >= 0),
    ADD COLUMN slippage numeric(20, 4) NOT NULL DEFAULT 0;  -- what slippage cost, already in the price

-- Every status change of an order, with its bar and reason.
CREATE TABLE order_events (
    id               bigserial PRIMARY KEY,
    order_id         bigint NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    bar_time         timestamp NOT NULL,
    status           text NOT NULL,
    filled_quantity  bigint NOT NULL,
    reason           text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, bar_time, status)
);
INSERT INTO order_events (order_id, bar_time, status, filled_quantity, reason)
SELECT id, bar_time, status, filled_quantity, reason FROM orders;

-- Borrow fees on short positions held overnight, one row per session, symbol and day.
CREATE TABLE borrow_fees (
    id         bigserial PRIMARY KEY,
    fee_key    text NOT NULL UNIQUE,          -- {thread}:{start_count}:fee:{bar_index}:{symbol}
    model_id   bigint NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    thread_id  text NOT NULL,
    bar_time   timestamp NOT NULL,            -- the first bar of the day the fee is charged on
    symbol     text NOT NULL,
    quantity   bigint NOT NULL,               -- shares short
    price      numeric(16, 4) NOT NULL,       -- the close they were valued at
    days       integer NOT NULL CHECK (days > 0),
    amount     numeric(20, 4) NOT NULL CHECK (amount >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX borrow_fees_model_idx ON borrow_fees (model_id, id);
CREATE INDEX borrow_fees_thread_idx ON borrow_fees (thread_id, bar_time);

DROP FUNCTION record_order(text, bigint, text, timestamp, text, text, numeric, numeric, boolean, text, text);

-- Place an order (open, or rejected with the rule and reason). Idempotent per client_order_id.
CREATE FUNCTION place_order(
    p_client_order_id text, p_model_id bigint, p_thread_id text, p_bar_time timestamp,
    p_symbol text, p_side text, p_quantity numeric, p_order_type text, p_time_in_force text,
    p_limit_price numeric, p_stop_price numeric, p_trail_percent numeric, p_trail_anchor numeric,
    p_take_profit numeric, p_stop_loss numeric, p_stop_loss_limit numeric, p_good_for date,
    p_status text, p_rule text, p_reason text
) RETURNS TABLE (order_id bigint, status text, rule text, reason text, replayed boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_order_id bigint;
BEGIN
    INSERT INTO orders AS o (client_order_id, model_id, thread_id, bar_time, symbol, side, quantity,
                             order_type, time_in_force, limit_price, stop_price, trail_percent,
                             trail_anchor, take_profit, stop_loss, stop_loss_limit, good_for,
                             status, rule, reason, evaluated_at)
    VALUES (p_client_order_id, p_model_id, p_thread_id, p_bar_time, p_symbol, p_side, p_quantity,
            p_order_type, p_time_in_force, p_limit_price, p_stop_price, p_trail_percent,
            p_trail_anchor, p_take_profit, p_stop_loss, p_stop_loss_limit, p_good_for,
            p_status, p_rule, p_reason, p_bar_time)
    ON CONFLICT (client_order_id) DO NOTHING
    RETURNING o.id INTO v_order_id;
    IF v_order_id IS NULL THEN  -- placed before: a replayed node
        RETURN QUERY SELECT o.id, o.status, o.rule, o.reason, true
                     FROM orders o WHERE o.client_order_id = p_client_order_id;
        RETURN;
    END IF;
    INSERT INTO order_events (order_id, bar_time, status, filled_quantity, reason)
    VALUES (v_order_id, p_bar_time, p_status, 0, p_reason);
    RETURN QUERY SELECT v_order_id, p_status, p_rule, p_reason, false;
END
$$;

-- Cancel or expire an open order and its open bracket legs, with the bar and the reason.
CREATE FUNCTION close_order(p_order_id bigint, p_bar_time timestamp, p_status text, p_reason text)
RETURNS TABLE (order_id bigint, status text, changed boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_row record;
    v_changed boolean := false;
BEGIN
    FOR v_row IN
        UPDATE orders o SET status = p_status, reason = p_reason,
                            evaluated_at = GREATEST(o.evaluated_at, COALESCE(p_bar_time, o.evaluated_at))
        WHERE (o.id = p_order_id OR o.parent_id = p_order_id)
          AND o.status IN ('open', 'partially_filled')
        RETURNING o.id, o.evaluated_at, o.filled_quantity
    LOOP
        INSERT INTO order_events (order_id, bar_time, status, filled_quantity, reason)
        VALUES (v_row.id, v_row.evaluated_at, p_status, v_row.filled_quantity, p_reason)
        ON CONFLICT DO NOTHING;
        v_changed := v_changed OR v_row.id = p_order_id;
    END LOOP;
    RETURN QUERY SELECT o.id, o.status, v_changed FROM orders o WHERE o.id = p_order_id;
END
$$;

-- Record that a resting order was evaluated at a bar without filling: a new trailing anchor, a
-- stop-limit's trigger, or an expiry. Compare-and-set on evaluated_at: a replay changes nothing.
CREATE FUNCTION touch_order(
    p_order_id bigint, p_bar_time timestamp, p_status text, p_reason text,
    p_trail_anchor numeric, p_triggered boolean
) RETURNS boolean LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_filled bigint;
BEGIN
    UPDATE orders o SET evaluated_at = p_bar_time,
                        trail_anchor = COALESCE(p_trail_anchor, o.trail_anchor),
                        triggered = o.triggered OR p_triggered,
                        status = COALESCE(p_status, o.status),
                        reason = COALESCE(p_reason, o.reason)
    WHERE o.id = p_order_id AND o.evaluated_at < p_bar_time AND o.status IN ('open', 'partially_filled')
    RETURNING o.filled_quantity INTO v_filled;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_reason IS NOT NULL THEN
        INSERT INTO order_events (order_id, bar_time, status, filled_quantity, reason)
        SELECT p_order_id, p_bar_time, o.status, v_filled, p_reason FROM orders o WHERE o.id = p_order_id
        ON CONFLICT DO NOTHING;
    END IF;
    IF p_status IN ('cancelled', 'expired') THEN
        PERFORM close_order(p_order_id, p_bar_time, p_status, p_reason);
    END IF;
    RETURN true;
END
$$;

-- Fill (part of) an open order at a bar: the ledger's single writer of cash and positions.
-- Idempotent per (order, bar). Cash and the position are locked and re-checked: a buy that opens
-- or adds to a long needs the cash; a sell past zero needs shorting. A fill of a bracket entry
-- places or grows its exits; a fill of an exit shrinks or cancels the other one.
CREATE FUNCTION fill_order(
    p_order_id bigint, p_bar_time timestamp, p_quantity bigint, p_price numeric,
    p_commission numeric, p_slippage numeric, p_allow_short boolean, p_reason text
) RETURNS TABLE (
    status text, rule text, reason text, fill_quantity bigint, price numeric, notional numeric,
    commission numeric, filled_quantity bigint, replayed boolean
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    o orders%ROWTYPE;
    v_cash numeric;
    v_held bigint;
    v_after bigint;
    v_notional numeric;
    v_shortfall text;
    v_status text;
    v_leg record;
    v_remaining bigint;
BEGIN
    SELECT * INTO o FROM orders WHERE id = p_order_id FOR UPDATE;
    IF EXISTS (SELECT 1 FROM fills f WHERE f.order_id = p_order_id AND f.bar_time = p_bar_time) THEN
        RETURN QUERY SELECT o.status, o.rule, o.reason, f.quantity, f.price, f.notional, f.commission,
                            o.filled_quantity, true
                     FROM fills f WHERE f.order_id = p_order_id AND f.bar_time = p_bar_time;
        RETURN;
    END IF;
    IF o.status NOT IN ('open', 'partially_filled') THEN  -- cancelled, expired or rejected meanwhile
        RETURN QUERY SELECT o.status, o.rule, o.reason, NULL::bigint, NULL::numeric, NULL::numeric,
                            NULL::numeric, o.filled_quantity, false;
        RETURN;
    END IF;

    v_notional := p_price * p_quantity;  -- exact: 4-decimal price times whole shares
    SELECT c.cash INTO v_cash FROM cash_accounts c WHERE c.model_id = o.model_id FOR UPDATE;
    SELECT p.quantity INTO v_held FROM positions p
     WHERE p.model_id = o.model_id AND p.symbol = o.symbol FOR UPDATE;
    v_held := COALESCE(v_held, 0);
    v_after := v_held + CASE o.side WHEN 'buy' THEN p_quantity ELSE -p_quantity END;
    IF o.side = 'buy' AND v_after > 0 AND v_notional + p_commission > COALESCE(v_cash, 0) THEN
        v_shortfall := format('cash %s does not cover %s plus commission %s at the fill',
                              v_cash, v_notional, p_commission);
    ELSIF o.side = 'sell' AND v_after < 0 AND NOT p_allow_short THEN
        v_shortfall := format('only %s %s held at the fill, cannot sell %s (short selling is off)',
                              v_held, o.symbol, p_quantity);
    END IF;
    IF v_shortfall IS NOT NULL THEN
        UPDATE orders SET status = 'rejected', rule = 'execution', reason = v_shortfall,
                          evaluated_at = p_bar_time WHERE id = p_order_id;
        INSERT INTO order_events (order_id, bar_time, status, filled_quantity, reason)
        VALUES (p_order_id, p_bar_time, 'rejected', o.filled_quantity, v_shortfall) ON CONFLICT DO NOTHING;
        PERFORM close_order(p_order_id, p_bar_time, 'cancelled', 'its bracket order was rejected: ' || v_shortfall);
        RETURN QUERY SELECT 'rejected'::text, 'execution'::text, v_shortfall, NULL::bigint,
                            NULL::numeric, NULL::numeric, NULL::numeric, o.filled_quantity, false;
        RETURN;
    END IF;

    UPDATE cash_accounts c
       SET cash = c.cash + CASE o.side WHEN 'buy' THEN -v_notional ELSE v_notional END - p_commission
     WHERE c.model_id = o.model_id;
    INSERT INTO positions AS p (model_id, symbol, quantity) VALUES (o.model_id, o.symbol, v_after)
    ON CONFLICT (model_id, symbol) DO UPDATE SET quantity = EXCLUDED.quantity;
    INSERT INTO fills (order_id, model_id, symbol, side, quantity, price, notional, bar_time,
                       commission, slippage)
    VALUES (p_order_id, o.model_id, o.symbol, o.side, p_quantity, p_price, v_notional, p_bar_time,
            p_commission, p_slippage);
    o.filled_quantity := o.filled_quantity + p_quantity;
    v_status := CASE WHEN o.filled_quantity >= o.quantity THEN 'filled' ELSE 'partially_filled' END;
    UPDATE orders SET status = v_status, reason = p_reason, filled_quantity = o.filled_quantity,
                      evaluated_at = p_bar_time WHERE id = p_order_id;
    INSERT INTO order_events (order_id, bar_time, status, filled_quantity, reason)
    VALUES (p_order_id, p_bar_time, v_status, o.filled_quantity, p_reason) ON CONFLICT DO NOTHING;

    IF o.take_profit IS NOT NULL OR o.stop_loss IS NOT NULL THEN  -- a bracket entry: its exits cover the fill
        FOR v_leg IN
            SELECT 'take_profit' AS leg, 'limit' AS order_type, o.take_profit AS limit_price,
                   NULL::numeric AS stop_price WHERE o.take_profit IS NOT NULL
            UNION ALL
            SELECT 'stop_loss', CASE WHEN o.stop_loss_limit IS NULL THEN 'stop' ELSE 'stop_limit' END,
                   o.stop_loss_limit, o.stop_loss WHERE o.stop_loss IS NOT NULL
        LOOP
            INSERT INTO orders AS x (client_order_id, model_id, thread_id, bar_time, symbol, side,
                                     quantity, order_type, time_in_force, limit_price, stop_price,
                                     parent_id, leg, status, rule, reason, evaluated_at)
            VALUES (o.client_order_id || ':' || v_leg.leg, o.model_id, o.thread_id, p_bar_time, o.symbol,
                    CASE o.side WHEN 'buy' THEN 'sell' ELSE 'buy' END, p_quantity, v_leg.order_type,
                    'gtc', v_leg.limit_price, v_leg.stop_price, p_order_id, v_leg.leg, 'open', 'bracket',
                    format('%s exit of bracket %s, active from the next bar', v_leg.leg, o.client_order_id),
                    p_bar_time)
            ON CONFLICT (client_order_id) DO UPDATE SET quantity = x.quantity + EXCLUDED.quantity;
            INSERT INTO order_events (order_id, bar_time, status, filled_quantity, reason)
            SELECT x.id, p_bar_time, 'open', x.filled_quantity, x.reason FROM orders x
            WHERE x.client_order_id = o.client_order_id || ':' || v_leg.leg ON CONFLICT DO NOTHING;
        END LOOP;
    ELSIF o.leg IS NOT NULL THEN  -- a bracket exit: one cancels the other
        v_remaining := o.quantity - o.filled_quantity;
        IF v_remaining <= 0 THEN
            PERFORM close_order(s.id, p_bar_time, 'cancelled',
                                format('one-cancels-other: the %s exit filled', o.leg))
            FROM orders s WHERE s.parent_id = o.parent_id AND s.id <> o.id;
        ELSE
            UPDATE orders s SET quantity = s.filled_quantity + v_remaining
            WHERE s.parent_id = o.parent_id AND s.id <> o.id AND s.status IN ('open', 'partially_filled');
        END IF;
    END IF;

    RETURN QUERY SELECT v_status, o.rule, p_reason, p_quantity, p_price, v_notional, p_commission,
                        o.filled_quantity, false;
END
$$;

-- Charge a day's borrow fee on a short position. Idempotent per fee key.
CREATE FUNCTION charge_borrow_fee(
    p_fee_key text, p_model_id bigint, p_thread_id text, p_bar_time timestamp, p_symbol text,
    p_quantity bigint, p_price numeric, p_days integer, p_amount numeric
) RETURNS boolean LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO borrow_fees (fee_key, model_id, thread_id, bar_time, symbol, quantity, price, days, amount)
    VALUES (p_fee_key, p_model_id, p_thread_id, p_bar_time, p_symbol, p_quantity, p_price, p_days, p_amount)
    ON CONFLICT (fee_key) DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE cash_accounts SET cash = cash - p_amount WHERE model_id = p_model_id;
    RETURN true;
END
$$;
