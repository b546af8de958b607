-- Your own market data: real minute bars (they replace the synthetic minutes of their days), and a
-- version per symbol that every write to its bars bumps, so each process can tell with one cheap query
-- whether the bars it cached are still current.

-- `time` is when the minute closes (09:31 .. 16:00), New York exchange time without a zone, like
-- the bar times everywhere else.
CREATE TABLE minute_bars (
    symbol  text NOT NULL,
    time    timestamp NOT NULL,
    open    numeric(16, 4) NOT NULL,
    high    numeric(16, 4) NOT NULL,
    low     numeric(16, 4) NOT NULL,
    close   numeric(16, 4) NOT NULL,
    volume  bigint NOT NULL,
    PRIMARY KEY (symbol, time),
    CHECK (low <= open AND open <= high AND low <= close AND close <= high AND low > 0 AND volume >= 0)
);

-- One row per symbol that has (or had) bars; `version` grows with every statement that changes them.
CREATE TABLE market_versions (
    symbol      text PRIMARY KEY,
    version     bigint NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO market_versions (symbol, version) SELECT DISTINCT symbol, 1 FROM daily_bars;

-- Statement-level, so a COPY or an upsert of thousands of bars bumps each symbol once. Symbols are
-- locked in name order, so two writers of several symbols cannot deadlock on these rows.
CREATE FUNCTION bump_market_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO market_versions AS v (symbol, version)
    SELECT DISTINCT symbol, 1 FROM changed ORDER BY symbol
    ON CONFLICT (symbol) DO UPDATE SET version = v.version + 1, changed_at = now();
    RETURN NULL;
END
$$;

CREATE TRIGGER daily_bars_inserted AFTER INSERT ON daily_bars
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_market_versions();
CREATE TRIGGER daily_bars_updated AFTER UPDATE ON daily_bars
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_market_versions();
CREATE TRIGGER daily_bars_deleted AFTER DELETE ON daily_bars
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_market_versions();
CREATE TRIGGER minute_bars_inserted AFTER INSERT ON minute_bars
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_market_versions();
CREATE TRIGGER minute_bars_updated AFTER UPDATE ON minute_bars
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_market_versions();
CREATE TRIGGER minute_bars_deleted AFTER DELETE ON minute_bars
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_market_versions();
