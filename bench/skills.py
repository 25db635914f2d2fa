"""What skills cost: system-prompt bytes, per-turn CPU of the catalogue, time for an edit to count.

    python bench/skills.py [--skills 50] [--turns 2000] [--reloads 10]

Method: ``--skills`` skills are written to a temporary folder, each a ``SKILL.md`` with a
one-line description and a body of the size of the bundled ones (their bodies, in turn),
and loaded by the agent's catalogue (``agents.skills.SkillCatalogue``, bundled skills off).
The agent is an ``LLMAgent`` with ``use_skill`` and an in-process scripted model.

- prompt bytes: ``LLMAgent.system_prompt`` as sent (names and descriptions), against the same
  prompt with every skill's body inlined after its line (what a prompt without progressive
  disclosure carries on every request);
- per-turn CPU: process time of rendering the system prompt, as every run does, with the
  catalogue against the same agent with no skills, over ``--turns`` renders; and, for scale,
  what re-parsing every ``SKILL.md`` on each turn would cost instead of the cache;
- reload: a ``SKILL.md``'s description is rewritten while the catalogue watches (``watchfiles``,
  the shipped 50 ms step), timed from the write until the catalogue has reloaded it, and then a
  message is run and its model request checked to carry the new description; ``--reloads``
  times.

MCP tool-call overhead is measured in its own process by ``bench/mcp.py`` (it starts MCP
servers); this file keeps to skills.

The last line of output is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

from agents.config import AgentConfig
from agents.runtime import LLMAgent, ResolvedModel
from agents.skills import SkillCatalogue, skill_tool
from agents.tools.base import ToolRegistry
from agents.tools.builtin import builtin_tools
from agents.tools.config import ToolsConfig
from bench._common import emit, latency_figures
from hub.skills import SkillsConfig, bundled_root, load_all, parse_skill, skill_roots
from tests.agents.fake_run_context import FakeRunContext, collect, inbound
from tests.agents.scripted import ScriptedProvider


def write_skills(root: Path, count: int) -> None:
    bundled = bundled_root()
    assert bundled is not None, "the bundled skills are missing"
    bodies = [parse_skill(p).body for p in sorted(bundled.glob("*/SKILL.md"))]
    for i in range(count):
        folder = root / f"skill-{i:02d}"
        folder.mkdir(parents=True)
        (folder / "SKILL.md").write_text(
            f"---\nname: skill-{i:02d}\ndescription: Skill number {i} does one useful thing well, "
            f"for requests about topic {i}.\n---\n{bodies[i % len(bodies)]}",
            encoding="utf-8",
        )


def agent_for(catalogue: SkillCatalogue | None, provider: ScriptedProvider) -> LLMAgent:
    registry = ToolRegistry()
    registry.extend(builtin_tools(ToolsConfig()))
    if catalogue is not None:
        registry.add(skill_tool(catalogue))
    return LLMAgent(lambda _: ResolvedModel(provider), registry, AgentConfig(), skills=catalogue or ())


def prompt_figures(agent: LLMAgent, bare: LLMAgent, catalogue: SkillCatalogue) -> dict[str, int | float]:
    listed = agent.system_prompt("terminal").encode()
    inlined = (
        bare.system_prompt("terminal")
        + "\n\nSkills:\n"
        + "\n\n".join(f"## {s.name}\n{s.description}\n\n{s.body}" for s in catalogue)
    )
    return {
        "prompt_bytes_listed": len(listed),
        "prompt_bytes_inlined": len(inlined.encode()),
        "prompt_bytes_ratio": round(len(inlined.encode()) / len(listed), 1),
    }


def per_turn_cpu_ms(agent: LLMAgent, turns: int) -> float:
    start = time.process_time()
    for _ in range(turns):
        agent.system_prompt("terminal")
    return (time.process_time() - start) * 1000 / turns


def uncached_parse_ms(catalogue: SkillCatalogue, turns: int) -> float:
    roots = skill_roots(catalogue.config, catalogue.data_dir)
    rounds = max(1, turns // 50)
    start = time.process_time()
    for _ in range(rounds):
        load_all(roots)
    return (time.process_time() - start) * 1000 / rounds


async def reload_seconds(catalogue: SkillCatalogue, agent: LLMAgent, provider: ScriptedProvider, n: int) -> list[float]:
    path = catalogue[0].path
    text = path.read_text(encoding="utf-8")
    out: list[float] = []
    for i in range(n):
        marker = f"edited {i}"
        start = time.perf_counter()
        path.write_text(text.replace("does one useful thing", marker, 1), encoding="utf-8")
        async with asyncio.timeout(10):
            while marker not in catalogue[0].description:
                await catalogue.wait_for(catalogue.generation + 1)
        out.append(time.perf_counter() - start)
        provider.reply("ok")
        await collect(agent, FakeRunContext(inbound("hi")))
        assert marker in (provider.requests[-1].system or ""), "the next message did not see the edit"
    return out


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "skills"
        write_skills(root, args.skills)
        catalogue = SkillCatalogue(SkillsConfig(paths=[root], bundled=False), Path(tmp))
        provider = ScriptedProvider()
        agent, bare = agent_for(catalogue, provider), agent_for(None, ScriptedProvider())
        figures: dict[str, int | float] = {"skills": len(catalogue), **prompt_figures(agent, bare, catalogue)}
        per_turn_cpu_ms(agent, 100)  # warm up
        with_skills, without = per_turn_cpu_ms(agent, args.turns), per_turn_cpu_ms(bare, args.turns)
        figures["catalogue_cpu_ms_per_turn"] = round(max(0.0, with_skills - without), 4)
        figures["prompt_cpu_ms_per_turn"] = round(with_skills, 4)
        figures["uncached_parse_ms_per_turn"] = round(uncached_parse_ms(catalogue, args.turns), 3)
        catalogue.start()
        await catalogue.started()
        try:
            seconds = await reload_seconds(catalogue, agent, provider, args.reloads)
        finally:
            await catalogue.aclose()
        figures.update(latency_figures("reload_", seconds))
    print(f"skills: {figures['skills']}")
    print(
        f"system prompt: {figures['prompt_bytes_listed']:,} bytes with names and descriptions, "
        f"{figures['prompt_bytes_inlined']:,} with the bodies inlined ({figures['prompt_bytes_ratio']}x)"
    )
    print(
        f"per-turn CPU of the catalogue: {figures['catalogue_cpu_ms_per_turn'] * 1000:.1f} µs "
        f"(goal < 100 µs; the whole prompt {figures['prompt_cpu_ms_per_turn'] * 1000:.1f} µs); "
        f"re-parsing every SKILL.md each turn would cost {figures['uncached_parse_ms_per_turn']:.2f} ms"
    )
    print(
        f"saved SKILL.md → next message sees it: p50 {figures['reload_p50_ms']:.0f} ms, "
        f"max {figures['reload_p99_ms']:.0f} ms over {len(seconds)} edits"
    )
    emit(figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skills", type=int, default=50)
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--reloads", type=int, default=10)
    asyncio.run(main(parser.parse_args()))
