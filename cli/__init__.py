"""The `tradegraph` command line: the application layer, on top of the domain, the agent and the server."""
