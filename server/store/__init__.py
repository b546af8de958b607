"""SQL for the protocol's threads and runs: keyword-only functions, always scoped to a user."""
