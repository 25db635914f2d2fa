"""The hub's one aiohttp server. Later parts mount their routes on ``app`` before it starts."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from ._lifecycle import Lifecycle
from .channel import Handler
from .errors import ConfigError

log = logging.getLogger(__name__)


class Gateway:
    def __init__(self, host: str, port: int, *, health: Callable[[], dict[str, object]]) -> None:
        self.host = host
        self.port = port
        self.app = web.Application(client_max_size=4 * 1024 * 1024)
        self._health = health
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None
        """The port it listens on once started (``[server] port = 0`` picks one)."""
        self.app.router.add_get("/healthz", self._healthz)
        self._life = Lifecycle("Gateway")

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self._health()
        return web.json_response(report, status=200 if report.get("ok") else 503)

    async def start(self) -> None:
        """Listen; routes are fixed from here on.

        Raises:
            ConfigError: the address cannot be bound (the port is taken).
            RuntimeError: started before (one life: docs/ARCHITECTURE.md, "Lifecycle").
        """
        with self._life.starting():
            runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port)
            try:
                await site.start()
            except BaseException as exc:
                await runner.cleanup()
                if isinstance(exc, OSError):
                    raise ConfigError(
                        f"cannot listen on {self.host}:{self.port}: {exc.strerror}; "
                        "set [server] port to a free port (0 picks one)"
                    ) from None
                raise
            self._runner = runner
            addresses = runner.addresses
            self.bound_port = addresses[0][1] if addresses else self.port
            log.info("HTTP server listening on %s:%s", self.host, self.bound_port)

    async def stop(self) -> None:
        """Close the server. Does nothing unless running."""
        if not self._life.stopping():
            return
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
