"""Memory: what the agent remembers beyond one conversation's history (issue 25).

``base`` declares the values and the ``MemoryBackend`` protocol; backends are extensions in the
entry-point group ``autohands.memory`` (``sqlite``: ``hub.memory.sqlite``); ``fusion`` merges
rankings for hybrid search.
"""

from hub.memory.base import Hit, HitKind, Memory, MemoryBackend, Scope, ScopeDenied, ScopeKind
from hub.memory.fusion import RRF_K, reciprocal_rank_fusion

__all__ = [
    "RRF_K",
    "Hit",
    "HitKind",
    "Memory",
    "MemoryBackend",
    "Scope",
    "ScopeDenied",
    "ScopeKind",
    "reciprocal_rank_fusion",
]
