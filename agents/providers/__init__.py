"""Model providers on the official SDKs, behind one provider-neutral model (``base``)."""

from .base import (
    AssistantMessage,
    ChatMessage,
    Finished,
    ModelRequest,
    ModelResponse,
    Provider,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    ToolSpec,
    UserMessage,
)

__all__ = [
    "AssistantMessage",
    "ChatMessage",
    "Finished",
    "ModelRequest",
    "ModelResponse",
    "Provider",
    "StreamEvent",
    "TextDelta",
    "ToolCall",
    "ToolResult",
    "ToolResultsMessage",
    "ToolSpec",
    "UserMessage",
]
