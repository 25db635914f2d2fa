"""``OpenAIEmbedder``: the ``Embedder`` on any OpenAI-compatible ``/v1/embeddings`` endpoint
(OpenAI, Ollama, vLLM, LM Studio), through the ``openai`` SDK.

No retries (``max_retries=0``): a memory backend that cannot embed keeps working on full text
and embeds later, which beats stalling a user's turn on back-offs. Every failure — the SDK's
errors, a timeout, an answer that is not one vector per text — becomes ``EmbeddingUnavailable``
with a one-line cause that never holds the API key. An HTTP error that may be the texts' doing
is ``EmbeddingRefused`` (``_REFUSALS``), so a backend can single out a text the model never takes.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence

import openai
from openai.types import CreateEmbeddingResponse

from hub.memory.base import EmbeddingRefused, EmbeddingUnavailable
from hub.redact import mask_urls

__all__ = ["BATCH_SIZE", "OpenAIEmbedder"]

BATCH_SIZE = 256
"""Texts per request; OpenAI takes up to 2,048, local servers often far fewer."""

_LIMIT = 200
_NOT_THE_TEXTS = frozenset({401, 403, 404, 408, 409, 429})
"""Client errors that no text causes: the key, the model's name, a timeout, a conflict, the rate."""


def _refusal(status: int) -> bool:
    """Whether HTTP ``status`` may come of the texts sent: any other 4xx (400 too long or
    invalid, 413, 422), and 500, which some local servers answer for a text longer than the
    model's context. 503 and the like stay outages."""
    return (400 <= status < 500 and status not in _NOT_THE_TEXTS) or status == 500


class OpenAIEmbedder:
    """Embeds texts with ``model`` at ``base_url`` (None: the SDK's default, OpenAI's API).

    Args:
        base_url: the endpoint's base, ending in ``/v1`` as the SDK expects.
        api_key: the bearer key (a placeholder for local servers that ignore it).
        model: the embedding model's id.
        timeout: seconds one request may take.
        batch_size: texts per request.
    """

    def __init__(
        self, *, base_url: str | None, api_key: str, model: str, timeout: float, batch_size: int = BATCH_SIZE
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._model = model
        self._timeout = timeout
        self._batch_size = batch_size
        self._api_key = api_key
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)
        self._closed = False

    @property
    def model(self) -> str:
        """The embedding model's id."""
        return self._model

    async def embed(self, texts: Sequence[str]) -> builtins.list[builtins.list[float]]:
        """One vector per text, in order, ``batch_size`` texts per request.

        Raises:
            EmbeddingRefused: the endpoint answered an error the texts may cause (``_refusal``).
            EmbeddingUnavailable: the endpoint failed, timed out or answered something else.
        """
        if self._closed:
            raise EmbeddingUnavailable("the embedder is closed")
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors += await self._batch(texts[start : start + self._batch_size])
        return vectors

    async def check(self) -> str:
        """Embed one word: ``"<model>, <n> dimensions"`` (``autohands doctor``'s live check).

        Raises:
            EmbeddingUnavailable: as ``embed``.
        """
        (vector,) = await self.embed(["hello"])
        return f"{self._model}, {len(vector)} dimensions"

    async def aclose(self) -> None:
        """Close the HTTP client; safe to call twice."""
        if not self._closed:
            self._closed = True
            await self._client.close()

    async def _batch(self, texts: Sequence[str]) -> list[list[float]]:
        try:
            response = await self._client.embeddings.create(model=self._model, input=list(texts))
        except openai.APITimeoutError as exc:
            raise EmbeddingUnavailable(f"the embedding endpoint did not answer within {self._timeout:g} s") from exc
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise self._unavailable(f"cannot connect to the embedding endpoint ({type(cause).__name__})") from exc
        except openai.APIStatusError as exc:
            answer = f"the embedding endpoint answered HTTP {exc.status_code}: {exc.message}"
            if _refusal(exc.status_code):
                raise EmbeddingRefused(self._one_line(answer), status=exc.status_code) from exc
            raise self._unavailable(answer) from exc
        except (openai.OpenAIError, ValueError) as exc:  # a body the SDK cannot parse, no data
            raise self._unavailable(f"the embedding endpoint answered something unexpected: {exc}") from exc
        return self._vectors(response, len(texts))

    def _vectors(self, response: CreateEmbeddingResponse, expected: int) -> list[list[float]]:
        """The answer's vectors in input order, once they are one per text, of one length, finite."""
        data = sorted(response.data, key=lambda item: item.index)
        if [item.index for item in data] != list(range(expected)):
            raise EmbeddingUnavailable(f"the embedding endpoint answered {len(data)} vectors for {expected} texts")
        vectors = [list(item.embedding) for item in data]
        dimensions = {len(vector) for vector in vectors}
        if len(dimensions) != 1 or 0 in dimensions:
            raise EmbeddingUnavailable("the embedding endpoint answered vectors of unequal or zero length")
        if not all(math.isfinite(x) for vector in vectors for x in vector):
            raise EmbeddingUnavailable("the embedding endpoint answered vectors that are not finite numbers")
        return vectors

    def _unavailable(self, cause: str) -> EmbeddingUnavailable:
        return EmbeddingUnavailable(self._one_line(cause))

    def _one_line(self, cause: str) -> str:
        """``cause`` on one line, without the key or credentials in URLs, not too long."""
        line = " ".join(mask_urls(cause).split())
        if len(self._api_key) >= 8:
            line = line.replace(self._api_key, "***")
        return line if len(line) <= _LIMIT else line[: _LIMIT - 1] + "…"
