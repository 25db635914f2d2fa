"""The agent's skills: parsed once, kept, and reloaded when their files change.

Each turn's system prompt lists the catalogue (``agents.persona``), so reading it must cost
nothing: the skills are a tuple replaced whole on reload, never parsed on a turn. A file is
parsed again only when its stamp (the ``SKILL.md``'s modification time and size, and its
folder's modification time, which moves when a resource is added or removed) changes.
Reloading is driven by ``watchfiles`` in a task the catalogue owns (``start`` / ``aclose``): a
saved ``SKILL.md`` counts from the next message, with no restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

from watchfiles import awatch

from hub.skills import (
    Skill,
    SkillError,
    SkillProblem,
    SkillsConfig,
    parse_skill,
    skill_files,
    skill_roots,
    survey,
)

__all__ = ["SkillCatalogue"]

log = logging.getLogger(__name__)

Stamp = tuple[int, int, int]


class SkillCatalogue(Sequence[Skill]):
    """The skills on offer, sorted by name; a live view (``LLMAgent`` reads it every turn).

    Args:
        config: the validated ``[skills]`` section.
        data_dir: the hub's data directory (relative ``paths`` are under it).
        step_ms: how long the watcher waits for more changes before reloading (tests shorten it).
    """

    def __init__(self, config: SkillsConfig, data_dir: Path, *, step_ms: int = 50) -> None:
        self.config = config
        self.data_dir = data_dir
        self.roots = skill_roots(config, data_dir)
        self.step_ms = step_ms
        self._cache: dict[Path, tuple[Stamp, Skill | SkillProblem]] = {}
        self._skills: tuple[Skill, ...] = ()
        self._by_name: dict[str, Skill] = {}
        self._warned: set[str] = set()
        self.problems: tuple[SkillProblem, ...] = ()
        self.generation = 0
        """How many times the catalogue was (re)loaded; ``wait_for`` awaits a later one."""
        self._reloaded = asyncio.Event()
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reload()
        for name in survey(config, self._parsed()).unknown:
            log.warning("[skills] names %r, but no skill has that name", name)

    # ------------------------------------------------------------------ the Sequence
    @overload
    def __getitem__(self, index: int) -> Skill: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Skill]: ...
    def __getitem__(self, index: int | slice) -> Skill | Sequence[Skill]:
        return self._skills[index]

    def __len__(self) -> int:
        return len(self._skills)

    def __iter__(self) -> Iterator[Skill]:
        return iter(self._skills)

    def get(self, name: str) -> Skill | None:
        return self._by_name.get(name.strip())

    # ------------------------------------------------------------------ loading
    def reload(self) -> None:
        """Look at every skill folder again; parse only the files whose stamp changed."""
        seen: dict[Path, tuple[Stamp, Skill | SkillProblem]] = {}
        for root, bundled in self.roots:
            for path in skill_files(root):
                stamp = _stamp(path)
                if stamp is None:
                    continue  # removed between the listing and now
                cached = self._cache.get(path)
                seen[path] = cached if cached is not None and cached[0] == stamp else (stamp, _parse(path, bundled))
        self._cache = seen
        found = survey(self.config, self._parsed())
        self._skills = found.skills
        self._by_name = {s.name: s for s in found.skills}
        self.problems = found.problems
        self._warn(found.problems)
        self.generation += 1
        self._reloaded.set()
        self._reloaded = asyncio.Event()

    def _parsed(self) -> list[Skill | SkillProblem]:
        return [item for _, item in self._cache.values()]

    def _warn(self, problems: Sequence[SkillProblem]) -> None:
        """One warning per problem while it lasts (a fixed file may break again and warn again)."""
        lines = {str(p) for p in problems}
        for line in sorted(lines - self._warned):
            log.warning("%s", line)
        self._warned = lines

    async def wait_for(self, generation: int) -> None:
        """Return once the catalogue has been loaded ``generation`` times."""
        while self.generation < generation:
            await self._reloaded.wait()

    # ------------------------------------------------------------------ watching
    def start(self) -> None:
        """Watch the skill folders (needs a running event loop); once, and only with ``watch``."""
        if self._task is not None or not self.config.watch:
            return
        for root, bundled in self.roots:
            if not bundled and not root.exists() and root.is_relative_to(self.data_dir.expanduser()):
                root.mkdir(mode=0o700, parents=True, exist_ok=True)  # the default folder: ready for a first skill
        roots = [root for root, _ in self.roots if root.is_dir()]
        if roots:
            self._task = asyncio.get_running_loop().create_task(self._watch(roots), name="skills-watch")

    async def started(self) -> None:
        """Return once changes are being watched (at once when nothing is watched)."""
        if self._task is not None:
            await self._ready.wait()

    async def _watch(self, roots: list[Path]) -> None:
        changes = awatch(*roots, stop_event=self._stop, step=self.step_ms, debounce=1000)
        # Runs once this task first waits, which is after awatch has set up its watches.
        asyncio.get_running_loop().call_soon(self._watching)
        try:
            async for _ in changes:
                self.reload()
        except Exception:  # the skills stay as last loaded; the agent goes on without reloads
            log.exception("watching the skill folders failed; skills reload only after a restart")
        finally:
            self._ready.set()  # nobody waits for a watch that will not come

    def _watching(self) -> None:
        self.reload()  # catch anything saved between the first load and the watch
        self._ready.set()

    async def aclose(self) -> None:
        """Stop watching (the agent's ``aclose``)."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            await task


def _stamp(path: Path) -> Stamp | None:
    try:
        st, folder = path.stat(), path.parent.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, folder.st_mtime_ns)


def _parse(path: Path, bundled: bool) -> Skill | SkillProblem:
    try:
        return parse_skill(path, bundled=bundled)
    except SkillError as exc:
        return SkillProblem(path, str(exc))
