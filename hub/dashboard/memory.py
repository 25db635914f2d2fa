"""The dashboard's memories view (issue 25), for admin principals with the dashboard's CSRF
rules (``_api``):

    GET    /api/admin/memories                          every scope holding memories, with counts
    GET    /api/admin/memories?scope=user&key=rec:bob   that scope's memories (``&q=words``: search)
    DELETE /api/admin/memories/{id}                     forget one (or POST …/{id}/forget)

The operator may read and forget every scope (``MemoryBackend.scope_counts`` names them). With
``[memory] enabled = false`` every endpoint answers 404 saying so.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ..auth import Principal
from ..memory.access import MemoryAccess
from ..memory.base import Hit, Memory, Scope, ScopeKind
from ._api import AdminHandler, _limit, error, json
from ._deps import DashboardDeps

__all__ = ["forget_memory", "memories"]

log = logging.getLogger(__name__)

MEMORY_OFF = "memory is off ([memory] enabled = false)"
_KINDS: dict[str, ScopeKind] = {"user": "user", "conversation": "conversation", "global": "global"}
_ORDER = {"user": 0, "conversation": 1, "global": 2}
"""Users first: the operator looks for a person's memories most often."""


def _scope_json(scope: Scope) -> dict[str, object]:
    return {"kind": scope.kind, "key": scope.key}


def _memory_json(memory: Memory) -> dict[str, object]:
    return {
        "id": memory.id,
        "scope": _scope_json(memory.scope),
        "text": memory.text,
        "created_at": memory.created_at.isoformat(),
        "source": memory.source,
        "metadata": dict(memory.metadata),
    }


def _hit_json(hit: Hit) -> dict[str, object]:
    return {**_memory_json(hit.memory), "score": hit.score, "via": hit.via}


def _chosen(request: web.Request) -> Scope | str:
    """The scope ``?scope=KIND&key=KEY`` names, or why it names none."""
    kind = _KINDS.get(request.query["scope"])
    if kind is None:
        return "scope must be user, conversation or global"
    try:
        return Scope(kind, request.query.get("key", ""))
    except ValueError as exc:
        return str(exc)


def memories(deps: DashboardDeps) -> AdminHandler:
    async def handle(request: web.Request, who: Principal) -> web.Response:
        memory = deps.memory
        if memory is None:
            return error(404, MEMORY_OFF)
        if "scope" not in request.query:
            counts = await memory.backend.scope_counts()
            counts.sort(key=lambda item: (_ORDER[item[0].kind], item[0].key))
            scopes = [{**_scope_json(scope), "count": n} for scope, n in counts]
            return json({"backend": memory.name, "scopes": scopes})
        scope = _chosen(request)
        if isinstance(scope, str):
            return error(400, scope)
        return await _of_scope(request, memory, scope)

    return handle


async def _of_scope(request: web.Request, memory: MemoryAccess, scope: Scope) -> web.Response:
    query = request.query.get("q", "").strip()
    limit = _limit(request, 100)
    if query:
        hits = await memory.backend.search(query, scopes=[scope], limit=limit)
        found = [_hit_json(hit) for hit in hits]
    else:
        found = [_memory_json(m) for m in await memory.backend.list(scopes=[scope], limit=limit)]
    return json({"scope": _scope_json(scope), "query": query, "memories": found})


def forget_memory(deps: DashboardDeps) -> AdminHandler:
    async def handle(request: web.Request, who: Principal) -> web.Response:
        memory = deps.memory
        if memory is None:
            return error(404, MEMORY_OFF)
        memory_id = request.match_info["memory_id"]
        every = [scope for scope, _ in await memory.backend.scope_counts()]
        if not await memory.backend.delete(memory_id, scopes=every):
            return error(404, f"no memory {memory_id!r} (forgotten already?)")
        log.info("memory %s forgotten from the dashboard by %s", memory_id, who.id)
        return json({"forgotten": memory_id})

    return handle
