"""The channel interface, re-exported for adapter authors (defined in ``hub.plugins``)."""

from hub.errors import ChannelError
from hub.messages import Button, ConversationRef, Delivery, Inbound, Outbound, Sender
from hub.plugins import Capabilities, Channel, ChannelContext, CommandInfo, Dialect, Inbox, Manifest

__all__ = [
    "Button",
    "Capabilities",
    "Channel",
    "ChannelContext",
    "ChannelError",
    "CommandInfo",
    "ConversationRef",
    "Delivery",
    "Dialect",
    "Inbound",
    "Inbox",
    "Manifest",
    "Outbound",
    "Sender",
]
