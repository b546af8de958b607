"""Store namespaces are private to their user: what a user calls `("a", "b")` is stored under
`("users", "<user id>", "a", "b")`, so two users' identical namespaces never meet, and nothing a
client sends can reach outside its own prefix. A bot's memories live in its owner's space under
`("bots", "<model id>", "memories")`.
"""

USER_ROOT = "users"


def private(user_id: int, namespace: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Where a user's namespace is stored."""
    return (USER_ROOT, str(user_id), *namespace)


def public(user_id: int, stored: tuple[str, ...] | list[str]) -> tuple[str, ...] | None:
    """The namespace as its user sees it; None when it is not that user's."""
    prefix = (USER_ROOT, str(user_id))
    stored = tuple(stored)
    return stored[len(prefix) :] if stored[: len(prefix)] == prefix else None


def bot_memories(model_id: int) -> tuple[str, ...]:
    """A bot's memory namespace, as its owner sees it (store it with `private(owner, ...)`)."""
    return ("bots", str(model_id), "memories")
