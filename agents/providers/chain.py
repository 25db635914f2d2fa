"""A provider that falls over to the next one when a provider fails after its retries."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence

from hub.errors import ProviderError

from .base import ModelRequest, ModelResponse, Provider, Restarted, StreamEvent, closing

logger = logging.getLogger(__name__)


class ProviderChain:
    """``primary`` first, then each of ``fallbacks`` in order.

    A request's ``model`` override names a model of the primary; fallbacks get the request
    without it and use their own configured model. A stream that fails after it yielded text
    falls over only through ``Restarted``, which a caller that has shown that text refuses:
    the user would see two different answers.
    """

    def __init__(self, primary: Provider, fallbacks: Sequence[Provider] = ()) -> None:
        self.primary = primary
        self.fallbacks = tuple(fallbacks)
        self.name = primary.name
        self.model = primary.model

    @property
    def providers(self) -> tuple[Provider, ...]:
        return (self.primary, *self.fallbacks)

    def _request_for(self, index: int, request: ModelRequest) -> ModelRequest:
        return request if index == 0 or request.model is None else dataclasses.replace(request, model=None)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        last: ProviderError | None = None
        for index, provider in enumerate(self.providers):
            try:
                return await provider.complete(self._request_for(index, request))
            except ProviderError as exc:
                last = self._failed(index, provider, exc)
        assert last is not None
        raise last

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        last: ProviderError | None = None
        sent_text = False  # since the last ``Restarted``
        for index, provider in enumerate(self.providers):
            if sent_text:  # the caller decides whether a second answer may replace the first
                assert last is not None
                yield Restarted(error=last)
                sent_text = False
            try:
                async with closing(provider.stream(self._request_for(index, request))) as events:
                    async for event in events:
                        sent_text = not isinstance(event, Restarted)
                        yield event
                return
            except ProviderError as exc:
                last = self._failed(index, provider, exc)
        assert last is not None
        raise last

    def _failed(self, index: int, provider: Provider, exc: ProviderError) -> ProviderError:
        following = self.providers[index + 1].name if index + 1 < len(self.providers) else None
        if following is not None:
            logger.warning("provider %s failed (%s); falling over to %s", provider.name, exc, following)
        return exc

    async def aclose(self) -> None:
        """Close every provider, even when one of them fails to close."""
        errors: list[Exception] = []
        for provider in self.providers:
            try:
                await provider.aclose()
            except Exception as exc:  # keep closing the others; report all at the end
                errors.append(exc)
        if errors:
            raise ExceptionGroup("closing providers failed", errors)
