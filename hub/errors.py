"""The hub's exceptions, split by who must act.

AutoHandsError
├── ConfigError          operator: a bad or missing setting (names the key and the fix)
├── PluginError          operator: an extension that cannot be loaded
├── StoreError           operator: the database cannot be opened or written
│   └── HubLockedError   another hub already runs on this database
├── ChannelError         runtime: a platform refused or failed a call
│                        (``retryable`` and ``retry_after`` tell the outbox what to do)
├── ProviderError        runtime: a model API failed (see agents.providers for subclasses)
├── ToolDenied           the model: a tool call was refused (permission or user denial)
└── ToolFailed           the model: a tool call ran and failed, or had bad arguments
"""

from __future__ import annotations


class AutoHandsError(Exception):
    """Base of every error the hub raises on purpose.

    ``retryable`` is the one name for "the same call may succeed later" on every class: false
    unless a class (``ChannelError``, ``ProviderError``) sets it per error."""

    retryable: bool = False


class ConfigError(AutoHandsError):
    """A setting is missing or invalid; the message names the key and what is expected."""


class PluginError(AutoHandsError):
    """An extension named in config could not be found or loaded."""


class StoreError(AutoHandsError):
    """The database could not be opened or written."""


class HubLockedError(StoreError):
    """A second hub was started on a database that another running hub owns."""

    def __init__(self, message: str, *, holder: str = "unknown") -> None:
        super().__init__(message)
        self.holder = holder  # "pid 123 on host": who owns the database


class ChannelError(AutoHandsError):
    """A platform call failed.

    Args:
        message: what failed, without secrets.
        retryable: True when the same call may succeed later (network, 5xx, 429); False for a
            refusal (a rejected token, a blocked bot), which the same call would meet again.
        retry_after: seconds the platform asked us to wait, if it said.
        status: the HTTP status or platform error code, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
        status: int | str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class ProviderError(AutoHandsError):
    """A model provider failed after its retries.

    Args:
        message: what failed, without secrets.
        retryable: True when another try (or the next provider of a chain) may succeed.
        retry_after: seconds the API asked us to wait, if it said.
        status: the HTTP status, if any.
        provider: the configured provider's name (``[providers.<name>]``), if known.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        provider: str = "",
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
        self.provider = provider


class ToolDenied(AutoHandsError):
    """A tool call was refused: outside its permissions, or denied by the user."""


class ToolFailed(AutoHandsError):
    """A tool call failed; the message goes back to the model as the tool's error result."""
