"""``[providers.<name>]``: one model endpoint's settings."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from hub.errors import ConfigError

API_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}

# Local OpenAI-compatible servers (Ollama, vLLM, llama.cpp) ignore the key, but the SDK
# insists on one.
_PLACEHOLDER_KEY = "not-needed"


class ProviderConfig(BaseModel):
    """Settings of one provider; ``kind`` picks the SDK."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    """The API the endpoint speaks: ``openai`` (Chat Completions; with ``base_url`` also Ollama,
    vLLM, llama.cpp and other compatible servers), ``anthropic`` (the Messages API), or the name
    of a provider extension (entry-point group ``autohands.providers``, or an ``[extensions]``
    folder: docs/EXTENSION_GUIDE.md); an unknown name is refused, listing the installed ones."""
    model: str = Field(min_length=1)
    """The default model id; a request's ``model`` overrides it."""
    api_key: SecretStr | None = None
    """None reads ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``."""
    base_url: str | None = None
    """None uses the vendor's own endpoint; set it for any OpenAI-compatible server."""
    timeout_seconds: float = Field(default=120.0, gt=0)
    """Longest wait for the response to start or for the next chunk of a stream."""
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    """Longest wait, in seconds, to open a connection (retried like other timeouts); raise it for
    a distant server or one slow to wake."""
    max_retries: int = Field(default=3, ge=0, le=20)
    """Our retries of 429 / 5xx / timeouts (the SDK's own retries are off)."""
    retry_initial_wait_seconds: float = Field(default=0.5, ge=0)
    """First back-off step; it doubles per retry, with jitter."""
    retry_max_wait_seconds: float = Field(default=60.0, ge=0)
    """Longest single wait; a ``retry-after`` above it fails at once with ``RateLimited``."""
    max_output_tokens: int = Field(default=4096, gt=0)
    """Upper bound on ``max_tokens`` sent with each request."""
    context_window: int = Field(default=128_000, gt=0)
    """The model's context size in tokens (the loop's compaction budget)."""
    extra_headers: dict[str, str] = Field(default_factory=dict)
    """HTTP headers added to every request to this endpoint, e.g. a gateway's own auth header or
    ``OpenAI-Organization``; write secret values ``${VAR}``."""
    max_connections: int = Field(default=1000, ge=1, le=100_000)
    """Open connections to this endpoint at most (one per concurrent streamed request)."""

    def resolve_api_key(self, name: str) -> str:
        """The key to use: the configured one, else the vendor's environment variable.

        Raises:
            ConfigError: no key anywhere and the endpoint is the vendor's own.
        """
        if self.api_key is not None and self.api_key.get_secret_value():
            return self.api_key.get_secret_value()
        env = API_KEY_ENV.get(self.kind)
        key = os.environ.get(env) if env else None
        if key:
            return key
        if env is None or (self.kind == "openai" and self.base_url is not None):
            return _PLACEHOLDER_KEY  # an extension's provider, or a local server: no key needed
        raise ConfigError(
            f'providers.{name}.api_key: not set and ${env} is empty; set api_key = "${{{env}}}" '
            f"in the config and export {env}"
        )
