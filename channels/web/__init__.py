"""The web chat channel: the page at ``/``, the one-time login, and the WebSocket ``/ws``
whose protocol docs/API.md ("WebSocket") describes."""

from .channel import WebChannel, WebConfig

__all__ = ["WebChannel", "WebConfig"]
