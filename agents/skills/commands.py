"""``/skills``: the skills the agent can use, in chat (``/skills NAME`` for one of them)."""

from __future__ import annotations

from hub.commands import Command, CommandCall, CommandRegistry

from .catalogue import SkillCatalogue

__all__ = ["register_skills_command"]


def register_skills_command(registry: CommandRegistry, catalogue: SkillCatalogue) -> None:
    async def skills(call: CommandCall) -> str:
        return describe_skills(catalogue, call.args.strip())

    registry.add(Command(name="skills", description="the skills the agent can use", usage="[name]", handler=skills))


def describe_skills(catalogue: SkillCatalogue, name: str = "") -> str:
    """The list of skills, or one skill's description, when to use it and its files."""
    if name:
        skill = catalogue.get(name)
        if skill is None:
            return f"There is no skill named {name!r}. /skills lists them."
        lines = [f"{skill.name}: {skill.description}"]
        if skill.when_to_use:
            lines.append(f"When to use it: {skill.when_to_use}")
        if skill.resources:
            lines.append("Files: " + ", ".join(skill.resources))
        return "\n".join(lines)
    if not catalogue:
        return "No skills are installed. Add one with: autohands skills new NAME"
    lines = [f"- {s.name}: {s.description}" for s in catalogue]
    return "Skills (ask for one by name, or just ask: the agent picks one when it fits):\n" + "\n".join(lines)
