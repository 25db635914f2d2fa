"""``use_skill``: the one tool through which the model reads a skill (progressive disclosure).

The system prompt lists only each skill's name and one-line description; ``use_skill(name)``
returns the instructions and names the skill's resource files, and ``use_skill(name, file=…)``
returns one of them. Resources are read here rather than through the file tool because a
skill's folder is outside every workspace: the file tool's jail stays as it is, and this tool
reads only the files the skill's folder lists (never a path the model makes up).
"""

from __future__ import annotations

from hub.errors import ToolFailed
from hub.skills import Skill

from ..tools.base import Risk, Tool
from ..tools.decorator import tool
from .catalogue import SkillCatalogue

__all__ = ["MAX_RESOURCE_BYTES", "SKILLS_CATEGORY", "SKILLS_CATEGORY_LINE", "skill_tool"]

SKILLS_CATEGORY = "skills"
SKILLS_CATEGORY_LINE = "read the instructions of a skill listed in the system prompt, and its resource files"
MAX_RESOURCE_BYTES = 200_000
"""A resource file larger than this is refused (skills' resources are notes and templates)."""


def skill_tool(catalogue: SkillCatalogue) -> Tool:
    """The ``use_skill`` tool over ``catalogue`` (read at each call: reloads count at once)."""

    @tool(name="use_skill", category=SKILLS_CATEGORY, risk=Risk.LOW, timeout_seconds=10.0)
    async def use_skill(name: str, file: str | None = None) -> str:
        """Read a skill's instructions (then follow them), or one of its resource files.

        Args:
            name: the skill's name, as listed in the system prompt.
            file: a resource file the instructions name, e.g. "checklist.md"; omit it for the instructions.
        """
        skill = catalogue.get(name)
        if skill is None:
            known = ", ".join(s.name for s in catalogue) or "none"
            raise ToolFailed(f"no skill named {name!r}; the skills are: {known}")
        return render_skill(skill) if not file else read_resource(skill, file)

    return use_skill


def render_skill(skill: Skill) -> str:
    """What ``use_skill(name)`` returns: the instructions, then what else the skill offers."""
    parts = [f"# Skill: {skill.name}\n\n{skill.body}"]
    if skill.allowed_tools:
        parts.append("Tools this skill uses: " + ", ".join(skill.allowed_tools) + ".")
    if skill.resources:
        listed = ", ".join(skill.resources)
        parts.append(f'Resource files (read one with use_skill(name="{skill.name}", file=…)): {listed}.')
    return "\n".join(parts)


def read_resource(skill: Skill, file: str) -> str:
    """One of the skill's listed resource files, as text."""
    wanted = file.strip().removeprefix("./")
    if wanted not in skill.resources:
        listed = ", ".join(skill.resources) or "none"
        raise ToolFailed(f"skill {skill.name!r} has no resource file {file!r}; its files: {listed}")
    path = skill.folder / wanted
    try:
        if path.stat().st_size > MAX_RESOURCE_BYTES:
            raise ToolFailed(f"{wanted} is larger than {MAX_RESOURCE_BYTES:,} bytes; it is not read")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ToolFailed(f"{wanted} is not a text file") from None
    except OSError as exc:
        raise ToolFailed(f"cannot read {wanted}: {exc.strerror or exc}") from None
