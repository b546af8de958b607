"""Benchmarks, run from the repo root: `make bench` (bench/runs_wait.py)."""
