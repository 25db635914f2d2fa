"""Memory: what the agent remembers beyond one conversation's history.

``base`` declares the values and the ``MemoryBackend`` protocol; backends are extensions in the
entry-point group ``autohands.memory`` (``sqlite``, ``vector``, ``postgres``); ``fusion`` merges
rankings for hybrid search; ``access`` decides who sees what; ``open`` builds it all from
``[memory]``; ``recall`` is automatic recall; ``commands`` are ``/memory`` and ``/forget``.
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
