-- Real daily OHLCV, split-adjusted at load time. Minute bars are derived in code (synthetic).
CREATE TABLE daily_bars (
    symbol  text NOT NULL,
    day     date NOT NULL,
    open    numeric(16, 4) NOT NULL,
    high    numeric(16, 4) NOT NULL,
    low     numeric(16, 4) NOT NULL,
    close   numeric(16, 4) NOT NULL,
    volume  bigint NOT NULL,
    PRIMARY KEY (symbol, day),
    CHECK (low <= open AND open <= high AND low <= close AND close <= high AND low > 0)
);
CREATE INDEX daily_bars_day_idx ON daily_bars (day);
