"""`python -m cli`: the same as the `tradegraph` command."""

from cli.main import app

app()
