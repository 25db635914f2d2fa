"""The agent's slash commands: ``/model`` (per-conversation model switch), ``/mode`` (the
workflow mode, ``agents.workflows``), ``/persona`` and ``/workspace`` (where the tools' files are).

``/model`` stores its choice in the session setting ``model`` as ``provider/model`` (or just
``provider`` for that provider's configured model); the runtime reads it at the start of each
run. A bare model name (``/model gpt-4o-mini``, ``/model meta-llama/Llama-3-8B``) means that
model on the default provider.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hub.commands import Command, CommandCall, CommandRegistry
from hub.messages import ConversationRef, Sender

from .config import IdentityConfig
from .persona import describe_persona
from .workflows import MODE_SETTING, MODES

WorkspaceOf = Callable[[ConversationRef, Sender], Path]
"""The workspace a call from this sender in this conversation uses (``[tools] workspace_scope``)."""

MODEL_SETTING = "model"
MODE_CHOICES = ("auto", *MODES)
_LISTED = 20
"""``/workspace`` lists at most this many entries."""
_RESET = frozenset({"default", "reset", "clear"})


@dataclass(frozen=True, slots=True)
class ModelChoice:
    provider: str
    model: str | None = None
    """None: the provider's configured model."""

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}" if self.model else self.provider


def parse_model_choice(value: str, *, providers: Sequence[str], default: str) -> ModelChoice:
    """``provider/model``, ``provider`` or a bare model name (on ``default``)."""
    head, sep, rest = value.strip().partition("/")
    if head in providers:
        return ModelChoice(head, (rest.strip() or None) if sep else None)
    return ModelChoice(default, value.strip())


@dataclass(frozen=True, slots=True)
class AgentCommands:
    """What the commands need to know; built by ``agents.build.build_agent``.

    Args:
        identity: the persona ``/persona`` shows.
        providers: names of the configured providers (empty when none is).
        default: the default provider's name.
        default_models: provider name → its configured model, for display.
        workspace_of: the tools' workspace of a sender in a conversation (``/workspace``).
    """

    identity: IdentityConfig
    providers: tuple[str, ...]
    default: str | None
    default_models: dict[str, str]
    workspace_of: WorkspaceOf | None = None

    def register(self, registry: CommandRegistry) -> None:
        registry.add(
            Command(
                name="model",
                description="show or switch the model for this conversation",
                usage="[provider/model | default]",
                handler=self.model,
            )
        )
        registry.add(
            Command(
                name="mode",
                description="show or set how the agent works through a request",
                usage="[auto | react | batch | chain | plan]",
                handler=mode,
            )
        )
        registry.add(Command(name="persona", description="show the agent's persona", handler=self.persona))
        if self.workspace_of is not None:
            registry.add(Command(name="workspace", description="the files the tools can see", handler=self.workspace))

    async def model(self, call: CommandCall) -> str:
        arg = call.args.strip()
        if self.default is None:
            return "No model provider is configured, so there is no model to switch."
        current = call.session.settings.get(MODEL_SETTING)
        if not arg:
            return self._describe(current)
        if arg.lower() in _RESET:
            await call.session.set_setting(MODEL_SETTING, None)
            default = self._label(ModelChoice(self.default))
            return f"This conversation uses the default model again: {default}."
        choice = parse_model_choice(arg, providers=self.providers, default=self.default)
        await call.session.set_setting(MODEL_SETTING, choice.label)
        return f"This conversation now uses {self._label(choice)}."

    async def persona(self, call: CommandCall) -> str:
        return describe_persona(self.identity)

    async def workspace(self, call: CommandCall) -> str:
        """What is in the caller's workspace; its folder on the host only for an admin (the
        operator, who can put files there: nobody else can reach the host's disk)."""
        assert self.workspace_of is not None
        path = self.workspace_of(call.inbound.conversation, call.inbound.sender).expanduser()
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir()) if path.is_dir() else []
        shown = ", ".join(entries[:_LISTED]) + (f" … ({len(entries)} in all)" if len(entries) > _LISTED else "")
        lines = [f"Your workspace holds: {shown}." if entries else "Your workspace is empty."]
        lines.append("The tools see these files and nothing else.")
        if call.is_admin:
            lines.append(f"On the host it is {path}: put files there for the tools to use.")
        return "\n".join(lines)

    def _describe(self, current: str | None) -> str:
        assert self.default is not None
        choice = (
            parse_model_choice(current, providers=self.providers, default=self.default)
            if current
            else ModelChoice(self.default)
        )
        listed = ", ".join(self._label(ModelChoice(p)) for p in self.providers)
        return (
            f"Model: {self._label(choice)}{'' if current else ' (default)'}.\n"
            f"Providers: {listed}.\nSwitch with /model provider/model, or /model default."
        )

    def _label(self, choice: ModelChoice) -> str:
        model = choice.model or self.default_models.get(choice.provider, "")
        return f"{choice.provider}/{model}" if model else choice.provider


async def mode(call: CommandCall) -> str:
    """``/mode``: show or set the conversation's workflow mode (the setting ``mode``)."""
    arg = call.args.strip().lower()
    choices = " | ".join(MODE_CHOICES)
    if not arg:
        current = call.session.settings.get(MODE_SETTING) or "auto"
        return f"Mode: {current}.\nSet it with /mode {choices}."
    if arg not in MODE_CHOICES:
        return f"There is no mode {arg!r}; choose one of {choices}."
    await call.session.set_setting(MODE_SETTING, None if arg == "auto" else arg)
    return f"This conversation now uses the mode {arg}."
