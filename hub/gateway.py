"""The hub's one aiohttp server. Later parts mount their routes on ``app`` before it starts."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from .channel import Handler

log = logging.getLogger(__name__)


class Gateway:
    def __init__(self, host: str, port: int, *, health: Callable[[], dict[str, object]]) -> None:
        self.host = host
        self.port = port
        self.app = web.Application(client_max_size=4 * 1024 * 1024)
        self._health = health
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None
        self.app.router.add_get("/healthz", self._healthz)

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self._health()
        return web.json_response(report, status=200 if report.get("ok") else 503)

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("Gateway already started")
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            from .errors import ConfigError

            raise ConfigError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror}; "
                "set [server] port to a free port (0 picks one)"
            ) from None
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
        log.info("HTTP server listening on %s:%s", self.host, self.bound_port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
