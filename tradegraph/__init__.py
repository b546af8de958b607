"""tradegraph: AI trading sessions as LangGraph graphs, with identity carried in checkpointed state."""

__version__ = "0.1.0"
