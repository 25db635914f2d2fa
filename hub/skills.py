"""Skills on disk: the Agent Skills ``SKILL.md`` format, the ``[skills]`` section, where skills are found.

A skill is a folder holding ``SKILL.md``: YAML front matter between two ``---`` lines (``name``,
``description``, optional ``allowed-tools`` and ``when_to_use``; other keys that other agents
write, such as ``license`` or ``metadata``, are accepted and ignored) and then Markdown
instructions. Every other file in the folder is a resource the instructions may refer to.
That is the common convention, so a skill written for another agent loads unchanged.

Skills are looked for in ``[skills] paths`` (each folder holds one folder per skill), then in
the skills shipped with AutoHands (``bundled_root``); a user's skill of the same name as a
shipped one replaces it. This module has no agent in it, so ``autohands skills`` can use it
(the hub never imports ``agents``); the agent's cached, reloading catalogue is
``agents.skills``.
"""

from __future__ import annotations

import logging
import re
import site
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from .config import StrictBool

__all__ = [
    "SKILL_FILE",
    "Skill",
    "SkillError",
    "SkillProblem",
    "SkillsConfig",
    "Survey",
    "bundled_root",
    "config_models",
    "load_all",
    "parse_skill",
    "skill_files",
    "skill_roots",
    "survey",
]

log = logging.getLogger(__name__)

SKILL_FILE = "SKILL.md"
NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
"""A skill's name as the convention has it: lowercase letters, digits and single hyphens."""
MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_RESOURCES = 100
"""Resource files listed per skill; a folder with more lists the first ones by path."""


class SkillsConfig(BaseModel):
    """``[skills]``: where the agent's skills come from and which it may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: list[Path] = Field(default_factory=lambda: [Path("skills")])
    """Folders of your own skills, each holding one folder per skill with its ``SKILL.md``;
    relative to ``[hub] data_dir`` (so ``~/.autohands/skills`` by default)."""
    bundled: StrictBool = True
    """Offer the skills shipped with AutoHands (a skill of yours with the same name wins)."""
    enabled: list[str] = Field(default_factory=list)
    """Offer only these skills, by name; empty: every skill found."""
    disabled: list[str] = Field(default_factory=list)
    """Never offer these skills, by name."""
    watch: StrictBool = True
    """Reload a skill when its files change, so an edit counts from the next message."""


def config_models() -> dict[str, type[BaseModel]]:
    """Entry point ``autohands.config:skills``: the ``[skills]`` model, for ``autohands config reference``."""
    return {"skills": SkillsConfig}


@dataclass(frozen=True, slots=True, kw_only=True)
class Skill:
    """One parsed ``SKILL.md``."""

    name: str
    description: str
    """One line (the front matter's, whitespace collapsed): what the system prompt lists."""
    body: str
    """The Markdown instructions after the front matter."""
    path: Path
    """The ``SKILL.md`` file."""
    when_to_use: str = ""
    allowed_tools: tuple[str, ...] = ()
    """Tools the skill expects (``allowed-tools``); shown to the model, not enforced."""
    resources: tuple[str, ...] = ()
    """The folder's other files, relative to it (``/`` separated), sorted."""
    bundled: bool = False
    """Shipped with AutoHands (rather than from ``[skills] paths``)."""

    @property
    def folder(self) -> Path:
        return self.path.parent


class SkillError(ValueError):
    """A ``SKILL.md`` that cannot be used; the message names the problem (not the file)."""


@dataclass(frozen=True, slots=True)
class SkillProblem:
    """A skill skipped, and why: ``str()`` is the one warning line."""

    path: Path
    problem: str

    def __str__(self) -> str:
        return f"skill {self.path} skipped: {self.problem}"


def parse_skill(path: Path, *, bundled: bool = False) -> Skill:
    """Parse one ``SKILL.md``; ``SkillError`` says what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SkillError(f"cannot read it ({exc.__class__.__name__}: {exc})") from None
    meta, body = _split_front_matter(text)
    name = _text_field(meta, "name")
    if len(name) > MAX_NAME or not NAME.match(name):
        raise SkillError(f"name {name!r} must be at most {MAX_NAME} lowercase letters, digits and hyphens")
    description = " ".join(_text_field(meta, "description").split())
    if len(description) > MAX_DESCRIPTION:
        raise SkillError(f"description is {len(description)} characters; at most {MAX_DESCRIPTION}")
    when = meta.get("when_to_use", "")
    if not isinstance(when, str):
        raise SkillError("when_to_use must be text")
    return Skill(
        name=name,
        description=description,
        body=body.strip() + "\n",
        path=path,
        when_to_use=" ".join(when.split()),
        allowed_tools=_tool_list(meta.get("allowed-tools")),
        resources=_resources(path.parent),
        bundled=bundled,
    )


def _split_front_matter(text: str) -> tuple[dict[str, object], str]:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise SkillError("no front matter: the file must start with a '---' line")
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    if end is None:
        raise SkillError("front matter is not closed by a '---' line")
    try:
        meta = yaml.safe_load("".join(lines[1:end]))
    except yaml.MarkedYAMLError as exc:  # the parser's errors: they know the line (the file's is one more)
        where = f" (line {exc.problem_mark.line + 2})" if exc.problem_mark is not None else ""
        raise SkillError(f"front matter is not valid YAML{where}: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise SkillError(f"front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise SkillError("front matter must be a YAML mapping (name: …, description: …)")
    return {str(k): v for k, v in meta.items()}, "".join(lines[end + 1 :])


def _text_field(meta: dict[str, object], key: str) -> str:
    value = meta.get(key)
    if value is None:
        raise SkillError(f"front matter has no '{key}'")
    if not isinstance(value, str) or not value.strip():
        raise SkillError(f"'{key}' must be non-empty text")
    return value.strip()


def _tool_list(value: object) -> tuple[str, ...]:
    """``allowed-tools``: a space- or comma-separated string (the convention) or a YAML list."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(t for t in re.split(r"[\s,]+", value) if t)
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(value)
    raise SkillError("'allowed-tools' must be text or a list of tool names")


def _resources(folder: Path) -> tuple[str, ...]:
    found = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file()
        and p.name != SKILL_FILE
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    return tuple(found[:MAX_RESOURCES])


# ---------------------------------------------------------------------------- where skills live
def bundled_root() -> Path | None:
    """The skills shipped with AutoHands: ``skills/`` in a source tree (an editable install),
    else the installed data files (``share/autohands/skills``)."""
    source = Path(__file__).resolve().parent.parent
    candidates = [source / "skills"] if (source / "pyproject.toml").is_file() else []
    candidates += [Path(prefix) / "share" / "autohands" / "skills" for prefix in (sys.prefix, site.USER_BASE or "")]
    return next((c for c in candidates if c.is_dir()), None)


def skill_roots(config: SkillsConfig, data_dir: Path) -> tuple[tuple[Path, bool], ...]:
    """Each folder to look in and whether it is the shipped one, in order of precedence."""
    users = [(p if p.expanduser().is_absolute() else data_dir / p).expanduser() for p in config.paths]
    bundled = bundled_root() if config.bundled else None
    return (*((p, False) for p in users), *(((bundled, True),) if bundled is not None else ()))


def skill_files(root: Path) -> list[Path]:
    """The ``SKILL.md`` of each skill folder directly under ``root``, by folder name."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob(f"*/{SKILL_FILE}") if p.is_file())


@dataclass(frozen=True, slots=True)
class Survey:
    """What the folders hold: the skills offered (by name), the ones set aside, the problems."""

    skills: tuple[Skill, ...]
    hidden: tuple[Skill, ...]
    """Found but not offered: ``enabled`` / ``disabled``, or replaced by a skill of the same name."""
    problems: tuple[SkillProblem, ...]
    unknown: tuple[str, ...]
    """Names in ``enabled`` / ``disabled`` that no skill has."""


def survey(config: SkillsConfig, parsed: Iterable[Skill | SkillProblem]) -> Survey:
    """Sort parsed files (in ``skill_roots`` order) into offered, hidden and problems."""
    offered: dict[str, Skill] = {}
    hidden: list[Skill] = []
    problems: list[SkillProblem] = []
    for item in parsed:
        if isinstance(item, SkillProblem):
            problems.append(item)
        elif item.name in offered:
            hidden.append(item)
            if not item.bundled:
                problems.append(
                    SkillProblem(item.path, f"another skill is named {item.name!r} ({offered[item.name].path})")
                )
        else:
            offered[item.name] = item
    allowed = [s for s in offered.values() if _allowed(s.name, config)]
    hidden.extend(s for s in offered.values() if not _allowed(s.name, config))
    names = {s.name for s in (*offered.values(), *hidden)}
    unknown = sorted({n for n in (*config.enabled, *config.disabled) if n not in names})
    return Survey(tuple(sorted(allowed, key=_by_name)), tuple(hidden), tuple(problems), tuple(unknown))


def _allowed(name: str, config: SkillsConfig) -> bool:
    return (not config.enabled or name in config.enabled) and name not in config.disabled


def _by_name(skill: Skill) -> str:
    return skill.name


def load_all(roots: Sequence[tuple[Path, bool]]) -> list[Skill | SkillProblem]:
    """Parse every skill under ``roots`` (no cache: the CLI's one-off read)."""
    out: list[Skill | SkillProblem] = []
    for root, bundled in roots:
        for path in skill_files(root):
            try:
                out.append(parse_skill(path, bundled=bundled))
            except SkillError as exc:
                out.append(SkillProblem(path, str(exc)))
    return out
