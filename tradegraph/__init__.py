"""tradegraph's domain: accounts, orders, risk, approval, ledger, valuation, sessions, reports, market data.

The bottom layer: it imports nothing of the agent (`graph/`, `nodes/`, `deciders/`, `tools/`), the
service (`server/`) or the command line (`cli/`); `make test` checks that with import-linter.
"""

__version__ = "0.1.0"
