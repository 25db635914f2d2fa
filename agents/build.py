"""The agent factory (entry point ``autohands.agents:llm``): the hub's sections → an agent.

``build_agent`` validates ``[agent]``, ``[providers.*]`` and ``[tools]``, picks the default
provider (``resolve_provider_settings``), builds the providers (``ProviderPool``) and the tool
set (``agent_tools``), prepares the workspace root and registers ``/model`` and ``/persona``.
With no provider to be found it returns the hub's ``NoProviderAgent``, which says how to add one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from hub.agent import AgentServices, JobScheduler
from hub.config import unresolved_problem, validate_section
from hub.default_agent import NoProviderAgent
from hub.errors import ConfigError

from .commands import AgentCommands, parse_model_choice
from .config import AgentConfig
from .mcp import McpConfig, McpServers
from .memory import AgentMemory
from .providers.base import Provider
from .providers.config import ProviderConfig
from .providers.factory import build_chain, build_provider
from .runtime import LLMAgent, ResolvedModel, default_tool_context
from .skills import build_skills
from .tools.base import Tool, ToolRegistry
from .tools.builtin import builtin_tools, tool_checks
from .tools.config import ToolsConfig
from .tools.extensions import ExtensionTools
from .tools.memory import memory_tools
from .tools.workspace import check_workspace_root, workspace_path

log = logging.getLogger(__name__)

DEFAULT_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5"}
"""Used when no provider is configured but the vendor's API key is in the environment."""


class ProviderPool:
    """The default chain (primary + fallbacks) and, lazily, providers picked with ``/model``."""

    def __init__(self, section: Mapping[str, Mapping[str, object]], default: str, fallback: Sequence[str]) -> None:
        self._section = dict(section)
        self.default = default
        # A section with an unset ${VAR} fails when it is picked (validate_section says which
        # variable), not the whole agent: only the default chain must be usable at start.
        self.configs = {
            name: validate_section(ProviderConfig, raw, f"providers.{name}")
            for name, raw in self._section.items()
            if name == default or name in fallback or unresolved_problem(raw) is None
        }
        self._chain = build_chain(default, fallback, self._section)
        self._single: dict[str, Provider] = {}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._section)

    def resolve(self, setting: str | None) -> ResolvedModel:
        if not setting:
            return ResolvedModel(self._chain, None, self.configs[self.default].context_window)
        choice = parse_model_choice(setting, providers=self.names, default=self.default)
        if choice.provider not in self.configs:  # raises its ConfigError
            validate_section(ProviderConfig, self._section[choice.provider], f"providers.{choice.provider}")
        window = self.configs[choice.provider].context_window
        if choice.provider == self.default:  # the chain drops the override for its fallbacks
            return ResolvedModel(self._chain, choice.model, window)
        provider = self._single.get(choice.provider)
        if provider is None:
            provider = self._single[choice.provider] = build_provider(choice.provider, self._section[choice.provider])
        return ResolvedModel(provider, choice.model, window)

    async def aclose(self) -> None:
        for provider in (self._chain, *self._single.values()):
            try:
                await provider.aclose()
            except Exception:  # closing the rest matters more than one client's close error
                log.warning("closing provider %s failed", provider.name, exc_info=True)


def resolve_provider_settings(
    config: AgentConfig, providers: Mapping[str, Mapping[str, object]], environ: Mapping[str, str]
) -> tuple[str | None, dict[str, Mapping[str, object]]]:
    """The default provider's name and the provider tables, filling in what config leaves out.

    ``[agent] provider`` unset: the only ``[providers.*]`` table if there is exactly one; with
    no tables, a default provider for the vendor whose API key is in the environment
    (``OPENAI_API_KEY`` first, then ``ANTHROPIC_API_KEY``); else None (unconfigured).
    """
    section = dict(providers)
    if config.provider is not None:
        return config.provider, section
    if len(section) == 1:
        return next(iter(section)), section
    if section:
        return None, section
    for kind in ("openai", "anthropic"):
        key = environ.get(f"{kind.upper()}_API_KEY")
        if key:
            log.info("no provider configured; using %s (%s) from %s_API_KEY", kind, DEFAULT_MODELS[kind], kind.upper())
            return kind, {kind: {"kind": kind, "model": DEFAULT_MODELS[kind], "api_key": key}}
    return None, section


def agent_tools(
    tools_config: ToolsConfig, *, scheduler: JobScheduler | None, memory: AgentMemory | None = None
) -> list[Tool]:
    """The built-in tools the config enables, plus ``schedule`` when the hub has a scheduler and
    ``remember``/``recall``/``forget`` when it has a memory."""
    tools = builtin_tools(tools_config)
    if scheduler is not None and "schedule" in tools_config.enabled:
        from .tools.schedule import schedule_tools  # loads APScheduler: only when scheduling is on

        tools.extend(schedule_tools())
    if memory is not None and "memory" in tools_config.enabled:
        tools.extend(memory_tools(memory))
    return tools


def build_agent(services: AgentServices, *, environ: Mapping[str, str] | None = None) -> LLMAgent | NoProviderAgent:
    """Entry point ``autohands.agents:llm``: the LLM agent from the hub's config sections.

    Registers ``/model`` and ``/persona`` in ``services.commands``. Raises ``ConfigError``
    naming the key for a bad ``[agent]``, ``[providers.*]`` or ``[tools]`` section.
    """
    config = validate_section(AgentConfig, services.agent_config, "agent")
    tools_config = validate_section(ToolsConfig, services.tools_config, "tools")
    mcp_config = validate_section(McpConfig, services.mcp_config, "mcp")
    default, section = resolve_provider_settings(
        config, services.providers_config, os.environ if environ is None else environ
    )
    root = tools_config.workspace_root(services.data_dir)
    check_workspace_root(root, services.protected_paths)
    checks = tool_checks(tools_config, root)
    if default is None:
        AgentCommands(config.identity, (), None, {}).register(services.commands)
        log.warning("no model provider configured: every message gets setup instructions")
        return NoProviderAgent(checks)
    if default not in section:
        known = ", ".join(sorted(section)) or "none"
        raise ConfigError(f"agent.provider: no [providers.{default}] section (configured providers: {known})")
    pool = ProviderPool(section, default, config.fallback)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    registry = ToolRegistry()
    memory = AgentMemory.from_services(services.memory)
    registry.extend(agent_tools(tools_config, scheduler=services.scheduler, memory=memory))
    skills = build_skills(services.skills_config, services.data_dir, registry, services.commands)  # use_skill, /skills
    if tools_config.approve_medium and not config.approve_medium:
        config = config.model_copy(update={"approve_medium": True})
    AgentCommands(
        config.identity,
        pool.names,
        default,
        {name: c.model for name, c in pool.configs.items()},
        workspace_of=lambda conv, sender: workspace_path(root, tools_config.workspace_scope, conv, sender),
    ).register(services.commands)
    # MCP servers' tools (agents/mcp): the servers start here, last, and stop with the agent
    mcp = McpServers(mcp_config, state_dir=services.data_dir / "mcp")
    mcp.start()
    mcp.register(registry)
    # tool extensions (agents/tools/extensions.py): added last, swapped between runs on a reload
    extensions = services.extensions
    extension_tools = ExtensionTools(registry, tools_config, extensions) if extensions is not None else None
    agent = LLMAgent(
        pool.resolve,
        extension_tools.registry() if extension_tools is not None else registry,
        config,
        tool_context=default_tool_context(root, tools_config, services, services.protected_paths),
        skills=skills,
        memory=memory,
        closers=(pool.aclose, skills.aclose, mcp.aclose),
        checks=(*checks, *mcp.checks()),
    )
    if extension_tools is not None:
        extension_tools.follow(agent.use_tools)
    return agent
