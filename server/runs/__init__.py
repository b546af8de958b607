"""Runs: stored in Postgres, executed by procrastinate workers, streamed from stored events."""
