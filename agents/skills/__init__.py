"""Skills for the LLM agent: the cached, reloading catalogue, the ``use_skill`` tool, ``/skills``.

The ``SKILL.md`` format, the ``[skills]`` section and where skills are found live in
``hub.skills`` (``autohands skills`` reads them without the agent). ``build_skills`` is what
``agents.build`` calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from hub.commands import CommandRegistry
from hub.config import validate_section
from hub.skills import Skill, SkillsConfig

from ..tools.base import ToolRegistry
from .catalogue import SkillCatalogue
from .commands import describe_skills, register_skills_command
from .tool import SKILLS_CATEGORY, SKILLS_CATEGORY_LINE, skill_tool

__all__ = [
    "SKILLS_CATEGORY",
    "Skill",
    "SkillCatalogue",
    "SkillsConfig",
    "build_skills",
    "describe_skills",
    "skill_tool",
]


def build_skills(
    section: Mapping[str, object], data_dir: Path, registry: ToolRegistry, commands: CommandRegistry
) -> SkillCatalogue:
    """Validate ``[skills]``, load the catalogue, add ``use_skill`` and ``/skills``; the catalogue
    starts watching now when an event loop runs (the hub builds its agent inside one), else at
    the caller's ``start()``. Close it with ``aclose``."""
    catalogue = SkillCatalogue(validate_section(SkillsConfig, section, "skills"), data_dir)
    # Offered even with no skill yet: one saved later is listed at once and must be usable.
    registry.add(skill_tool(catalogue))
    registry.describe(SKILLS_CATEGORY, SKILLS_CATEGORY_LINE)
    register_skills_command(commands, catalogue)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return catalogue
    catalogue.start()
    return catalogue
