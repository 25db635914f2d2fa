"""``autohands skills list | show NAME | new NAME | check``: the agent's skills, from the command line.

    autohands skills list          the skills on offer (and those set aside, and why)
    autohands skills show NAME     one skill: where it is, its files, its instructions
    autohands skills new NAME      a new skill folder with a SKILL.md to fill in
    autohands skills check         parse every skill; exit 1 if any is broken

The skills are read with ``hub.skills`` (the same parser the agent's catalogue uses), so this
needs neither the agent nor a running hub; a running hub sees a new or edited skill by itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_base import Command, Parser
from .config import Settings, validate_section
from .skills import (
    MAX_NAME,
    NAME,
    SKILL_FILE,
    Skill,
    SkillsConfig,
    Survey,
    load_all,
    skill_roots,
    survey,
)

__all__ = ["SKILLS", "skill_template"]

_ACTIONS = ("list", "show", "new", "check")


def _add(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    skills = sub.add_parser("skills", parents=[common], help="the agent's skills: list, show, new, check")
    actions = skills.add_subparsers(dest="skills_command", metavar="ACTION", parser_class=Parser)
    actions.add_parser("list", parents=[common], help="list the skills")
    show = actions.add_parser("show", parents=[common], help="show one skill")
    show.add_argument("name")
    new = actions.add_parser("new", parents=[common], help="create a skill in your first [skills] path")
    new.add_argument("name")
    new.add_argument("--description", default="", help="its one-line description")
    actions.add_parser("check", parents=[common], help="parse every skill and report problems")


def _run(settings: Settings, args: argparse.Namespace, parser: Parser) -> int:
    if args.skills_command not in _ACTIONS:
        parser.error("'skills' needs an action: list, show, new or check")
    config = validate_section(SkillsConfig, settings.skills, "skills")
    roots = skill_roots(config, settings.data_dir)
    if args.skills_command == "new":
        return _new(args.name, args.description, roots[0][0] if roots and not roots[0][1] else None)
    found = survey(config, load_all(roots))
    if args.skills_command == "show":
        return _show(found, args.name)
    if args.skills_command == "check":
        return _check(found)
    return _list(found)


def _list(found: Survey) -> int:
    offered = {s.name for s in found.skills}
    rows = [(s.name, _origin(s), s.description) for s in found.skills]
    rows += [(s.name, "replaced" if s.name in offered else "off", s.description) for s in found.hidden]
    if not rows:
        print("no skills found; create one with: autohands skills new NAME")
    width = max((len(name) for name, _, _ in rows), default=0)
    for name, origin, description in sorted(rows):
        print(f"{name:<{width}}  {origin:<8}  {description}")
    for problem in found.problems:
        print(f"! {problem}")
    return 0


def _origin(skill: Skill) -> str:
    return "bundled" if skill.bundled else "yours"


def _show(found: Survey, name: str) -> int:
    skill = next((s for s in (*found.skills, *found.hidden) if s.name == name), None)
    if skill is None:
        known = ", ".join(s.name for s in found.skills) or "none"
        print(f"autohands: error: no skill named {name!r} (skills: {known})", file=sys.stderr)
        return 1
    lines = [f"{skill.name} ({_origin(skill)}{'' if skill in found.skills else ', not offered'}): {skill.path}"]
    lines.append(f"description: {skill.description}")
    if skill.when_to_use:
        lines.append(f"when to use: {skill.when_to_use}")
    if skill.allowed_tools:
        lines.append("tools: " + ", ".join(skill.allowed_tools))
    if skill.resources:
        lines.append("files: " + ", ".join(skill.resources))
    print("\n".join(lines) + "\n\n" + skill.body, end="")
    return 0


def _check(found: Survey) -> int:
    for problem in found.problems:
        print(f"autohands: error: {problem}", file=sys.stderr)
    for name in found.unknown:
        print(f"autohands: warning: [skills] names {name!r}, but no skill has that name", file=sys.stderr)
    print(f"{len(found.skills)} skill(s) offered, {len(found.problems)} with problems")
    return 1 if found.problems else 0


def _new(name: str, description: str, root: Path | None) -> int:
    if root is None:
        print("autohands: error: no folder for your skills: set [skills] paths", file=sys.stderr)
        return 1
    if len(name) > MAX_NAME or not NAME.match(name):
        print(
            f"autohands: error: {name!r} is not a skill name: use lowercase letters, digits and hyphens "
            f"(at most {MAX_NAME}), e.g. weekly-report",
            file=sys.stderr,
        )
        return 1
    folder = root / name
    if (folder / SKILL_FILE).exists():
        print(f"autohands: error: {folder / SKILL_FILE} already exists", file=sys.stderr)
        return 1
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    (folder / SKILL_FILE).write_text(skill_template(name, description), encoding="utf-8")
    print(f"created {folder / SKILL_FILE}: fill in its description and instructions; the agent sees it at once")
    return 0


def skill_template(name: str, description: str = "") -> str:
    """A new ``SKILL.md`` that parses as it is (``autohands skills check``)."""
    summary = " ".join(description.split()) or f"TODO: one line saying what {name} does and when to use it."
    return (
        "---\n"
        f"name: {name}\n"
        f"description: {_yaml_text(summary)}\n"
        "# when_to_use: the requests this skill fits\n"
        "# allowed-tools: read_file fetch_url\n"
        "---\n"
        f"# {name}\n\n"
        "Steps the agent follows when it uses this skill:\n\n"
        "1. …\n"
        "2. …\n\n"
        "Put any templates or reference notes beside this file; the agent reads them with\n"
        f'use_skill(name="{name}", file="notes.md").\n'
    )


def _yaml_text(text: str) -> str:
    """``text`` as a YAML scalar: double-quoted (JSON's escapes are YAML's)."""
    import json

    return json.dumps(text, ensure_ascii=False)


SKILLS = Command("skills", _add, _run)
