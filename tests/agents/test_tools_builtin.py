"""The built-in set: categories from config, registration, and the size of what is sent per request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.tools.base import Risk, ToolRegistry
from agents.tools.builtin import builtin_tools, register_builtin
from agents.tools.config import ALL_CATEGORIES, ToolsConfig
from hub.config import validate_section
from hub.errors import ConfigError

from .conftest_tools import call, make_ctx

EXPECTED = {
    "file": {"read_file", "write_file", "list_dir", "delete_file"},
    "shell": {"run_command"},
    "web": {"fetch_url"},
    "search": {"grep", "glob"},
    "math": {"calculate", "stats"},
    "time": {"now", "convert_time"},
}


def schema_chars(config: ToolsConfig) -> int:
    """Characters of the tool definitions as a provider sends them (name, description, schema)."""
    return sum(
        len(json.dumps({"name": t.name, "description": t.description, "input_schema": t.parameters},
                       separators=(",", ":")))
        for t in builtin_tools(config)
    )  # fmt: skip


def test_all_categories_registered() -> None:
    registry = ToolRegistry()
    register_builtin(registry, ToolsConfig())
    groups = {cat: {t.name for t in tools} for cat, tools in registry.by_category().items()}
    assert groups == EXPECTED
    for t in registry:
        assert t.description and t.parameters["type"] == "object"
        assert isinstance(t.risk, Risk)
        text = json.dumps(t.parameters)
        assert '"title"' not in text and "$ref" not in text and "$defs" not in text
    assert registry.get("run_command").risk is Risk.HIGH  # type: ignore[union-attr]
    assert registry.get("delete_file").risk is Risk.HIGH  # type: ignore[union-attr]


def test_enabled_filters_categories() -> None:
    names = {t.name for t in builtin_tools(ToolsConfig(enabled=("math", "time", "math")))}
    assert names == EXPECTED["math"] | EXPECTED["time"]
    assert builtin_tools(ToolsConfig(enabled=())) == []


def test_config_validation_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"tools\.enabled\.0: Input should be 'file'"):
        validate_section(ToolsConfig, {"enabled": ["files"]}, "tools")
    with pytest.raises(ConfigError, match=r"tools\.shell\.timeout: unknown key \(did you mean 'timeout_seconds'\?"):
        validate_section(ToolsConfig, {"shell": {"timeout": 5}}, "tools")
    cfg = validate_section(ToolsConfig, {"workspace": "~/ws", "web": {"allow_networks": ["10.0.0.0/8"]}}, "tools")
    assert cfg.workspace == Path("~/ws").expanduser()
    assert ToolsConfig().workspace_root(Path("/data")) == Path("/data/workspaces")
    assert set(ToolsConfig().enabled) == set(ALL_CATEGORIES)


def test_schema_size_of_full_set() -> None:
    chars = schema_chars(ToolsConfig())
    count = len(builtin_tools(ToolsConfig()))
    print(f"\nbuilt-in tool definitions: {count} tools, {chars} chars, ~{chars // 4} tokens")
    # A budget, so that a careless docstring or schema change shows up here.
    assert chars < 5000


async def test_every_builtin_runs_from_the_registry(tmp_path: Path) -> None:
    registry = ToolRegistry()
    register_builtin(registry, ToolsConfig(enabled=("file", "search", "math", "time")))
    ctx = make_ctx(tmp_path)
    await call(registry.get("write_file"), ctx, path="a.txt", content="hello")  # type: ignore[arg-type]
    assert await call(registry.get("grep"), ctx, pattern="hel") == "a.txt:1:hello"  # type: ignore[arg-type]
    assert await call(registry.get("calculate"), ctx, expression="6*7") == "42"  # type: ignore[arg-type]
