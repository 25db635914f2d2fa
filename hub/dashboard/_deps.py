"""What the dashboard uses of the hub, passed in (it never sees the ``Hub`` itself)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..auth import Auth
from ..channel import Channel, Inbox
from ..config import ServerSection
from ..memory.access import MemoryAccess
from ..scheduler import Scheduler
from ..sessions import SessionManager
from ..store import StoreAPI
from ..tasks import Tasks
from .usage import DEFAULT_PRICES, Price


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardDeps:
    auth: Auth
    server: ServerSection
    """``[server]``: the allowed origins of requests that change something."""
    store: StoreAPI
    sessions: SessionManager
    """Pending questions, and the answers an admin gives to them."""
    scheduler: Scheduler | None
    inbox: Inbox
    """Where an admin's answer is recorded and published, like any inbound."""
    health: Callable[[], dict[str, object]]
    """``Hub.health``: channels started and each one's problem."""
    channels: Mapping[str, Channel]
    tasks: Tasks | None = None
    """The task pool (the Tasks tab); None: the hub runs none."""
    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    memory: MemoryAccess | None = None
    """The hub's memory (the Memories tab); None: ``[memory] enabled = false``."""
