"""LangGraph's store, with langgraph-api's paths and bodies (langgraph-sdk's `client.store` works unchanged).

Every namespace is private to its user (`tradegraph.namespaces`): what a client calls `("a", "b")` is
stored under `("users", "<id>", "a", "b")`, and answers show it without that prefix, so another
user's items and namespaces are never reached. `ttl` and `refresh_ttl` are accepted and ignored: the
store has no TTL configured, so items never expire.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from langgraph.store.base import BaseStore, Item
from pydantic import AfterValidator, Field, field_validator

from server.deps import CurrentUser, ServicesDep
from server.schemas import Body
from tradegraph.namespaces import private, public

router = APIRouter(prefix="/store", tags=["store"])
FILTER_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
"""What the Postgres store understands in a filter's `{field: {operator: value}}`."""


def checked_label(label: str) -> str:
    """A namespace label as the store keys it: not empty, no '.' (its separator), no NUL."""
    if not label:
        raise ValueError("namespace labels may not be empty")
    if "." in label:
        raise ValueError(f"namespace label {label!r} may not contain '.' (it separates labels)")
    if "\x00" in label:
        raise ValueError("namespace labels may not contain NUL characters")
    return label


Label = Annotated[str, AfterValidator(checked_label)]
Namespace = Annotated[list[Label], Field(min_length=1, max_length=50)]
NamespacePath = Annotated[list[Label], Field(max_length=50)]
Key = Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^[^\x00]*$")]


class ItemPut(Body):
    namespace: Namespace
    key: Key
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None
    ttl: float | None = None
    """Accepted and ignored: no store TTL is configured."""


class ItemDelete(Body):
    namespace: Namespace
    key: Key


class ItemSearch(Body):
    namespace_prefix: NamespacePath = Field(default_factory=list)
    filter: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    query: str | None = None
    refresh_ttl: bool | None = None
    """Accepted and ignored: no store TTL is configured."""

    @field_validator("filter")
    @classmethod
    def _known_operators(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for field, condition in (value or {}).items():
            operators = condition if isinstance(condition, dict) else {}
            unknown = [op for op in operators if op not in FILTER_OPERATORS]
            if unknown:
                raise ValueError(
                    f"{field!r}: unknown operator {unknown[0]!r}; use one of {', '.join(FILTER_OPERATORS)}"
                    " (an object value is read as operators)"
                )
        return value


class NamespaceList(Body):
    prefix: NamespacePath | None = None
    suffix: NamespacePath | None = None
    max_depth: int | None = Field(default=None, ge=1)
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


async def store_of(services: ServicesDep) -> BaseStore:
    """LangGraph's Postgres store, the one the service's graph carries."""
    store = services.graph.store
    assert store is not None, "the service's graph is compiled with a store"
    return store


StoreDep = Annotated[BaseStore, Depends(store_of)]


def namespace_of(text: str) -> tuple[str, ...]:
    """`GET /store/items?namespace=a.b`: the labels, or 422 naming the bad one."""
    try:
        return tuple(checked_label(label) for label in text.split("."))
    except ValueError as exc:
        raise HTTPException(422, f"namespace: {exc}") from exc


def item_json(user_id: int, item: Item) -> dict[str, Any]:
    """An item as its user sees it: `{namespace, key, value, created_at, updated_at}` (and search's score)."""
    shown = public(user_id, item.namespace)
    assert shown is not None, "the store was asked only for the user's own namespaces"
    return {**item.dict(), "namespace": list(shown)}


@router.put("/items", status_code=204)
async def put_item(body: ItemPut, user: CurrentUser, store: StoreDep) -> None:
    """Store or replace an item in one of the caller's namespaces."""
    await store.aput(private(user.id, body.namespace), body.key, body.value, index=body.index)


@router.get("/items")
async def get_item(
    user: CurrentUser,
    store: StoreDep,
    namespace: str,
    key: Annotated[str, Query(min_length=1)],
    refresh_ttl: bool | None = None,
) -> dict[str, Any]:
    """One of the caller's items, or 404 (`namespace` is its labels joined with '.')."""
    labels = namespace_of(namespace)
    item = await store.aget(private(user.id, labels), key)
    if item is None:
        raise HTTPException(404, f"no item {key!r} in namespace {list(labels)}")
    return item_json(user.id, item)


@router.delete("/items", status_code=204)
async def delete_item(body: ItemDelete, user: CurrentUser, store: StoreDep) -> None:
    """Delete one of the caller's items (204 also when there was none)."""
    await store.adelete(private(user.id, body.namespace), body.key)


@router.post("/items/search")
async def search_items(body: ItemSearch, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    """The caller's items under `namespace_prefix` (all of them for `[]`), newest update first."""
    items = await store.asearch(
        private(user.id, body.namespace_prefix),
        filter=body.filter,
        limit=body.limit,
        offset=body.offset,
        query=body.query,
    )
    return {"items": [item_json(user.id, item) for item in items]}


@router.post("/namespaces")
async def list_namespaces(body: NamespaceList, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    """The caller's namespaces, filtered and truncated on what the caller sees."""
    prefix, suffix = body.prefix or [], body.suffix or []
    # The stored prefix always holds the user's two labels; padding it to the suffix's length keeps a
    # suffix from matching into them (("5", "a") must not match what the user sees as ("a",)).
    visible_prefix = [*prefix, *["*"] * (len(suffix) - len(prefix))]
    found = await store.alist_namespaces(
        prefix=private(user.id, visible_prefix),
        suffix=tuple(suffix) or None,
        max_depth=None if body.max_depth is None else body.max_depth + len(private(user.id, ())),
        limit=body.limit,
        offset=body.offset,
    )
    shown = [public(user.id, namespace) for namespace in found]
    return {"namespaces": [list(namespace) for namespace in shown if namespace is not None]}
