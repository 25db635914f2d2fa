"""The hub's exceptions, split by who must act.

AutoHandsError
├── ConfigError          operator: a bad or missing setting (names the key and the fix)
├── PluginError          operator: an extension that cannot be loaded
├── StoreError           operator: the database cannot be opened or written
│   └── HubLockedError   another hub already runs on this database
├── ChannelError         runtime: a platform refused or failed a call
│                        (``transient`` and ``retry_after`` tell the outbox what to do)
├── ProviderError        runtime: a model API failed (see agents.providers for subclasses)
├── ToolDenied           the model: a tool call was refused (permission or user denial)
└── ToolFailed           the model: a tool call ran and failed, or had bad arguments
"""

from __future__ import annotations


class AutoHandsError(Exception):
    """Base of every error the hub raises on purpose."""


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
        transient: True when the same call may succeed later (network, 5xx, 429).
        retry_after: seconds the platform asked us to wait, if it said.
        status: the HTTP status or platform error code, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool = True,
        retry_after: float | None = None,
        status: int | str | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after
        self.status = status


class ProviderError(AutoHandsError):
    """A model provider failed after its retries."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class ToolDenied(AutoHandsError):
    """A tool call was refused: outside its permissions, or denied by the user."""


class ToolFailed(AutoHandsError):
    """A tool call failed; the message goes back to the model as the tool's error result."""
