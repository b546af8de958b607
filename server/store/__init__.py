"""SQL for the protocol's threads and runs: keyword-only reads and writes of rows.

Queries a client reaches take the caller's `user_id`; the `*_any` variants are for the worker and
the lifecycle, which act for whoever owns the run. Status changes are not here: they belong to
`server/runs/lifecycle.py`, the one owner of the run and thread state machine.
"""
