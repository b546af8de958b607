"""The HTTP service: LangGraph server protocol, trading endpoints and the operator console."""
