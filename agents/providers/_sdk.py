"""What both SDK-backed providers share: config, our retry policy, and the client's lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import httpx2

from .base import Finished, ModelRequest, ModelResponse, StreamEvent, TextDelta
from .config import ProviderConfig
from .retry import RetryPolicy, retry_call, retry_stream


class SDKProvider:
    """Subclasses set ``client_class`` and implement ``_complete_once`` / ``_stream_once``."""

    client_class: ClassVar[type[Any]]
    http_client_class: ClassVar[type[Any]]
    """The SDK's ``DefaultAioHttpClient``: its aiohttp transport costs about a third less CPU per
    streamed request than the default httpx pool, whose bookkeeping grows with every open
    connection (measured in bench/agent.py with 1,000 concurrent conversations)."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.model = config.model
        self.config = config
        self._policy = RetryPolicy.from_config(config)
        timeout = httpx2.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds)
        self._client = self.client_class(
            api_key=config.resolve_api_key(name),
            base_url=config.base_url,
            timeout=timeout,
            max_retries=0,  # retry.py owns retries (stacking both multiplies waits)
            default_headers=config.extra_headers or None,
            http_client=self.http_client_class(
                timeout=timeout,
                limits=httpx2.Limits(max_connections=config.max_connections,
                                     max_keepalive_connections=config.max_connections)),
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await retry_call(self.name, self._policy, lambda: self._complete_once(request))

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        return retry_stream(self.name, self._policy, lambda: self._stream_once(request))

    async def aclose(self) -> None:
        await self._client.close()

    async def _relay(self, stream: Any, acc: Any,
                     errors: Callable[..., AbstractContextManager[None]]) -> AsyncIterator[StreamEvent]:
        """Turn a started SDK stream into our events: ``acc.add(item)`` returns new text, and
        ``acc.response()`` the assembled answer. A break-off maps onto our errors (``errors``
        with ``streaming=True``); the stream is closed in every case."""
        try:
            items = stream.__aiter__()
            while True:
                with errors(self.name, streaming=True):
                    try:
                        item = await items.__anext__()
                    except StopAsyncIteration:
                        break
                text = acc.add(item)
                if text:
                    yield TextDelta(text=text)
        finally:
            await stream.close()
        yield Finished(response=acc.response())

    async def _complete_once(self, request: ModelRequest) -> ModelResponse:
        raise NotImplementedError

    def _stream_once(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError
