"""docs/CONFIG.md is generated from the config models and kept current; ``config show`` masks secrets."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from hub.config import load_settings
from hub.config_reference import render_effective, render_reference

ROOT = Path(__file__).resolve().parents[2]
CONFIG_MD = ROOT / "docs" / "CONFIG.md"
REGENERATE = (
    "docs/CONFIG.md is out of date: run `autohands config reference > docs/CONFIG.md` (or, before that "
    "command exists: python -c 'from hub.config_reference import render_reference; "
    'print(render_reference(), end="")\' > docs/CONFIG.md)'
)


def _documented(markdown: str) -> dict[str, set[str]]:
    """``{table: {keys}}`` from the ``## `[table]` `` headings and the key column of their tables."""
    out: dict[str, set[str]] = {}
    table = ""
    for line in markdown.splitlines():
        if heading := re.fullmatch(r"## `\[(.+)\]`", line):
            table = heading.group(1)
            out[table] = set()
        elif table and (row := re.match(r"\| `([^`]+)` \|", line)):
            out[table].add(row.group(1))
    return out


def _keys(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(table, key)`` for every value of a parsed TOML document that is not itself a table."""
    out = []
    for key, value in data.items():
        if isinstance(value, dict):
            out += _keys(value, f"{prefix}.{key}" if prefix else key)
        else:
            out.append((prefix, key))
    return out


def test_config_md_is_generated_from_the_models() -> None:
    rendered = render_reference()
    assert rendered == render_reference(), "the reference must be byte-stable"
    assert CONFIG_MD.is_file(), REGENERATE
    assert CONFIG_MD.read_text(encoding="utf-8") == rendered, REGENERATE


def test_every_shipped_key_is_documented() -> None:
    documented = _documented(render_reference())
    with (ROOT / "config" / "default.toml").open("rb") as f:
        shipped = tomllib.load(f)
    missing = [f"{table}.{key}" for table, key in _keys(shipped) if key not in documented.get(table, set())]
    assert not missing, f"keys of config/default.toml missing from docs/CONFIG.md: {missing}"
    for table in ("hub", "server", "store", "sessions", "outbox", "log", "scheduler", "agent", "tools"):
        assert table in documented
    assert {"providers.<name>", "channels.telegram", "channels.slack", "channels.discord"} <= set(documented)
    assert "OPENAI_API_KEY" in render_reference()


def test_effective_config_masks_secrets_and_keeps_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        """
[server]
port = 9123

[store]
url = "postgresql://hub:db-password-1@db.internal:5432/autohands"

[channels.telegram]
enabled = true
token = "${TELEGRAM_BOT_TOKEN}"
allow_users = ["4242"]

[providers.local]
kind = "openai"
model = "llama3.1"
base_url = "http://127.0.0.1:11434/v1"
api_key = "sk-provider-secret-2"
extra_headers = { Authorization = "Bearer header-secret-3" }

[agent]
provider = "local"
""",
        encoding="utf-8",
    )
    settings = load_settings(config, environ={"TELEGRAM_BOT_TOKEN": "123456:telegram-secret-4"})

    shown = render_effective(settings)

    for secret in ("db-password-1", "sk-provider-secret-2", "header-secret-3", "telegram-secret-4"):
        assert secret not in shown
    parsed = tomllib.loads(shown)
    assert parsed["server"]["port"] == 9123
    assert parsed["store"]["url"] == "postgresql://***@db.internal:5432/autohands"
    telegram = parsed["channels"]["telegram"]
    assert telegram["token"] == "***"
    assert telegram["allow_users"] == ["4242"]
    assert telegram["poll_timeout"] == 30, "an enabled channel's defaults are filled in"
    local = parsed["providers"]["local"]
    assert (local["api_key"], local["extra_headers"]["Authorization"]) == ("***", "***")
    assert (local["model"], local["base_url"]) == ("llama3.1", "http://127.0.0.1:11434/v1")
    assert parsed["agent"]["runtime"] == "llm"
    assert parsed["agent"]["max_turns"] == 12


def test_effective_config_shows_a_section_that_does_not_validate_as_written(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[channels.slack]\nenabled = true\nbot_token = "xoxb-slack-secret-5"\n', encoding="utf-8")
    settings = load_settings(config, environ={})

    shown = render_effective(settings)

    assert "xoxb-slack-secret-5" not in shown
    assert "[channels.slack]\n# as written: it does not validate" in shown
    assert tomllib.loads(shown)["channels"]["slack"] == {"enabled": True, "bot_token": "***"}


def test_effective_config_of_the_shipped_defaults_is_valid_toml() -> None:
    settings = load_settings(environ={"AUTOHANDS__CHANNELS__DISCORD__TOKEN": "env-secret-6"}, user_file=False)

    parsed = tomllib.loads(render_effective(settings))

    assert {k: parsed["server"][k] for k in ("enabled", "host", "port")} == {
        "enabled": True,
        "host": "127.0.0.1",
        "port": 8080,
    }
    assert parsed["channels"]["discord"] == {"enabled": False, "token": "***"}
    assert parsed["scheduler"]["max_jobs_per_user"] == 50
