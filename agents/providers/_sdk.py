"""What both SDK-backed providers share: config, our retry policy, and the client's lifecycle."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

import httpx2
import orjson

from hub.agent import Check

from ._sse import ServerSentEvent, SSEDecoder
from .base import Finished, ModelRequest, ModelResponse, StreamEvent, TextDelta
from .config import ProviderConfig
from .errors import StreamInterrupted
from .probe import probe_section
from .retry import RetryPolicy, retry_call, retry_stream


class StreamAssembly(Protocol):
    """Builds one streamed answer from the decoded events of its response body."""

    @property
    def finished(self) -> bool:
        """The stream's own end marker arrived; False when the body ends means it was cut off."""

    def add(self, event: ServerSentEvent) -> str:
        """Take one event (events after the end marker are ignored); returns the new answer
        text in it. Raises ``ProviderError`` for an error reported inside the stream."""

    def response(self) -> ModelResponse: ...


def event_json(provider: str, event: ServerSentEvent) -> Any:
    """The event's data as JSON; a chunk that is not JSON means the stream is broken."""
    try:
        return orjson.loads(event.data)
    except orjson.JSONDecodeError as exc:
        raise StreamInterrupted(
            f"{provider}: the stream sent a chunk that is not JSON: {event.data[:200]!r}",
            retryable=True,
            provider=provider,
        ) from exc


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
                limits=httpx2.Limits(
                    max_connections=config.max_connections, max_keepalive_connections=config.max_connections
                ),
            ),
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await retry_call(self.name, self._policy, lambda: self._complete_once(request))

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        return retry_stream(self.name, self._policy, lambda: self._stream_once(request))

    async def aclose(self) -> None:
        await self._client.close()

    @classmethod
    async def probe(cls, name: str, section: dict[str, Any], *, timeout: float) -> Check:
        """One live round trip with ``section`` (``hub.extensions.Probing``); never raises."""

        async def round_trip(name: str, config: ProviderConfig) -> tuple[str, str]:
            provider = cls(name, config)
            try:
                return await provider._probe_once()
            finally:
                await provider.aclose()

        return await probe_section(name, section, round_trip, timeout=timeout)

    async def _probe_once(self) -> tuple[str, str]:
        """The cheapest request that proves key, URL and model: the row's status and detail."""
        raise NotImplementedError

    async def _open_stream(self, path: str, body: dict[str, Any]) -> httpx2.Response:
        """POST ``body`` (already in the vendor's wire format) and return the unread streaming
        response. The SDK still sends it (auth, headers, timeouts, connection pool, HTTP
        errors raised as its own exceptions); the body is encoded once with orjson and the
        events are decoded by ``_relay``, not by the SDK's per-chunk pydantic models."""
        response: httpx2.Response = await self._client.post(
            path,
            cast_to=httpx2.Response,
            content=orjson.dumps(body),
            stream=True,
            options={"headers": {"Accept": "text/event-stream", "Content-Type": "application/json"}},
        )
        return response

    async def _relay(
        self, response: httpx2.Response, acc: StreamAssembly, errors: Callable[..., AbstractContextManager[None]]
    ) -> AsyncGenerator[StreamEvent, None]:
        """Decode a started SSE response into our events: ``acc.add(event)`` returns new text,
        ``acc.response()`` the assembled answer. A break-off maps onto our errors (``errors``
        with ``streaming=True``); the response is closed in every case."""
        decoder = SSEDecoder()
        try:
            chunks = response.aiter_bytes().__aiter__()
            ended = False
            while not ended:
                with errors(self.name, streaming=True):
                    try:
                        events = decoder.feed(await chunks.__anext__())
                    except StopAsyncIteration:
                        events, ended = decoder.close(), True
                for event in events:
                    text = acc.add(event)
                    if text:
                        yield TextDelta(text=text)
        finally:
            await response.aclose()
        if not acc.finished:
            raise StreamInterrupted(
                f"{self.name}: the stream ended before the answer was complete", retryable=True, provider=self.name
            )
        yield Finished(response=acc.response())

    async def _complete_once(self, request: ModelRequest) -> ModelResponse:
        raise NotImplementedError

    def _stream_once(self, request: ModelRequest) -> AsyncGenerator[StreamEvent, None]:
        raise NotImplementedError
