-- The ledger's single writer: record one order and, if approved, fill it, atomically, in one call.
-- Idempotent per client_order_id: a second call returns the first outcome with replayed = true.
CREATE FUNCTION record_order(
    p_client_order_id text, p_model_id bigint, p_thread_id text, p_bar_time timestamp,
    p_symbol text, p_side text, p_quantity numeric, p_price numeric,
    p_approved boolean, p_rule text, p_reason text
) RETURNS TABLE (
    order_id bigint, status text, rule text, reason text,
    fill_quantity bigint, price numeric, notional numeric, replayed boolean
) LANGUAGE plpgsql AS $$
DECLARE
    v_order_id bigint;
    v_cash numeric;
    v_held bigint;
    v_quantity bigint;
    v_notional numeric;
    v_shortfall text;
BEGIN
    INSERT INTO orders AS o (client_order_id, model_id, thread_id, bar_time, symbol, side, quantity,
                             status, rule, reason)
    VALUES (p_client_order_id, p_model_id, p_thread_id, p_bar_time, p_symbol, p_side, p_quantity,
            CASE WHEN p_approved THEN 'filled' ELSE 'rejected' END, p_rule, p_reason)
    ON CONFLICT (client_order_id) DO NOTHING
    RETURNING o.id INTO v_order_id;

    IF v_order_id IS NULL THEN  -- recorded before: report what happened then
        RETURN QUERY
            SELECT o.id, o.status, o.rule, o.reason, f.quantity, f.price, f.notional, true
            FROM orders o LEFT JOIN fills f ON f.order_id = o.id
            WHERE o.client_order_id = p_client_order_id;
        RETURN;
    END IF;
    IF NOT p_approved THEN
        RETURN QUERY SELECT v_order_id, 'rejected'::text, p_rule, p_reason,
                            NULL::bigint, NULL::numeric, NULL::numeric, false;
        RETURN;
    END IF;

    v_quantity := p_quantity::bigint;
    v_notional := p_price * v_quantity;  -- exact: 4-decimal price times whole shares
    SELECT c.cash INTO v_cash FROM cash_accounts c WHERE c.model_id = p_model_id FOR UPDATE;
    SELECT p.quantity INTO v_held FROM positions p
     WHERE p.model_id = p_model_id AND p.symbol = p_symbol FOR UPDATE;
    IF p_side = 'buy' AND v_notional > COALESCE(v_cash, 0) THEN
        v_shortfall := format('cash %s no longer covers %s at execution', v_cash, v_notional);
    ELSIF p_side = 'sell' AND v_quantity > COALESCE(v_held, 0) THEN
        v_shortfall := format('only %s %s held at execution, cannot sell %s',
                              COALESCE(v_held, 0), p_symbol, v_quantity);
    END IF;
    IF v_shortfall IS NOT NULL THEN
        UPDATE orders SET status = 'rejected', rule = 'execution', reason = v_shortfall
         WHERE id = v_order_id;
        RETURN QUERY SELECT v_order_id, 'rejected'::text, 'execution'::text, v_shortfall,
                            NULL::bigint, NULL::numeric, NULL::numeric, false;
        RETURN;
    END IF;

    IF p_side = 'buy' THEN
        UPDATE cash_accounts SET cash = cash - v_notional WHERE model_id = p_model_id;
        INSERT INTO positions (model_id, symbol, quantity) VALUES (p_model_id, p_symbol, v_quantity)
        ON CONFLICT (model_id, symbol) DO UPDATE SET quantity = positions.quantity + EXCLUDED.quantity;
    ELSE
        UPDATE cash_accounts SET cash = cash + v_notional WHERE model_id = p_model_id;
        UPDATE positions SET quantity = quantity - v_quantity
         WHERE model_id = p_model_id AND symbol = p_symbol;
    END IF;
    INSERT INTO fills (order_id, model_id, symbol, side, quantity, price, notional, bar_time)
    VALUES (v_order_id, p_model_id, p_symbol, p_side, v_quantity, p_price, v_notional, p_bar_time);
    RETURN QUERY SELECT v_order_id, 'filled'::text, p_rule, p_reason, v_quantity, p_price, v_notional, false;
END
$$;
