"""Market data: real daily bars (split-adjusted), synthetic minute bars, and look-ahead-free reads."""
