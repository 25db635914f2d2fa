"""Model providers on the official SDKs, behind one provider-neutral model (``base``).

The SDK-backed classes (``openai.OpenAIProvider``, ``anthropic.AnthropicProvider``) are not
imported here: ``build_provider`` loads them through the ``autohands.providers`` entry points.
"""

from .base import (
    AssistantMessage,
    ChatMessage,
    Finished,
    ModelRequest,
    ModelResponse,
    Provider,
    Restarted,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    ToolSpec,
    UserMessage,
)
from .chain import ProviderChain
from .config import ProviderConfig
from .errors import (
    AuthError,
    BadRequest,
    ContextTooLong,
    NotFound,
    Overloaded,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ServerError,
    StreamInterrupted,
)
from .factory import build_chain, build_provider
from .retry import RetryPolicy

__all__ = [
    "AssistantMessage",
    "AuthError",
    "BadRequest",
    "ChatMessage",
    "ContextTooLong",
    "Finished",
    "ModelRequest",
    "ModelResponse",
    "NotFound",
    "Overloaded",
    "Provider",
    "ProviderChain",
    "ProviderConfig",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "Restarted",
    "RetryPolicy",
    "ServerError",
    "StreamEvent",
    "StreamInterrupted",
    "TextDelta",
    "ToolCall",
    "ToolResult",
    "ToolResultsMessage",
    "ToolSpec",
    "UserMessage",
    "build_chain",
    "build_provider",
]
