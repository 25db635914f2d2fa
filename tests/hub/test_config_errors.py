"""Config errors that tell the truth: an unset ``${VAR}`` fails only what uses its section,
switches are booleans (``enabled = "yes"`` names the key), ``config check`` prints the
channels' warnings, ``config show`` masks secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import Unresolved, load_settings, validate_section
from hub.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
NO_KEYS = {"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""}


def cli(*args: str, home: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        cwd=ROOT,
        env={**os.environ, "HOME": str(home), **NO_KEYS},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def config_file(tmp_path: Path, body: str) -> Path:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[hub]\ndata_dir = "{tmp_path / "d"}"\n[server]\nenabled = false\n' + body)
    return cfg


UNSET_TELEGRAM = '[agent]\nruntime = "echo"\n[channels.telegram]\nenabled = true\ntoken = "${NO_SUCH_TG_TOKEN}"\n'


# ---------------------------------------------------------------------------- ${VAR} deferred
def test_an_unset_variable_is_kept_with_its_problem_in_channel_and_provider_sections() -> None:
    settings = load_settings(
        environ={},
        user_file=False,
        overrides={
            "channels": {"telegram": {"token": "${NO_TG}"}},
            "providers": {"p": {"kind": "openai", "model": "m", "api_key": "x-${NO_KEY}"}},
        },
    )
    token = settings.channels["telegram"]["token"]
    assert isinstance(token, Unresolved) and token == "${NO_TG}"
    with pytest.raises(ConfigError) as caught:
        validate_section(dict, settings.providers["p"], "providers.p")
    assert str(caught.value) == (
        "invalid config: providers.p.api_key: environment variable NO_KEY is not set "
        "(set it, or write ${NO_KEY:-default})"
    )


def test_an_unset_variable_elsewhere_still_fails_the_load() -> None:
    with pytest.raises(ConfigError, match=r"log\.file: environment variable NO_LOG_DIR is not set"):
        load_settings(environ={}, user_file=False, overrides={"log": {"file": "${NO_LOG_DIR}/x.log"}})


@pytest.mark.parametrize("command", [["jobs", "list"], ["extensions"], ["config", "show"]])
def test_commands_that_do_not_use_the_section_work(tmp_path: Path, command: list[str]) -> None:
    proc = cli(*command, "--config", str(config_file(tmp_path, UNSET_TELEGRAM)), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "NO_SUCH_TG_TOKEN" not in proc.stderr


def test_chat_works_beside_a_channel_with_an_unset_token(tmp_path: Path) -> None:
    proc = cli("chat", "--config", str(config_file(tmp_path, UNSET_TELEGRAM)), home=tmp_path, stdin="hello\n")
    assert proc.returncode == 0, proc.stderr
    assert "echo: hello" in proc.stdout.lower() or "hello" in proc.stdout
    assert "error" not in proc.stderr


def test_run_with_that_channel_fails_with_the_one_line(tmp_path: Path) -> None:
    proc = cli("run", "--config", str(config_file(tmp_path, UNSET_TELEGRAM)), home=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert lines[-1] == (
        "autohands: error: invalid config: channels.telegram.token: environment variable NO_SUCH_TG_TOKEN "
        "is not set (set it, or write ${NO_SUCH_TG_TOKEN:-default})"
    )


# ---------------------------------------------------------------------------- strict switches
@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('[channels.telegram]\nenabled = "yes"\n', "channels.telegram.enabled"),
        ('[server]\nenabled = "no"\n', "server.enabled"),
        ("[scheduler]\nenabled = 1\n", "scheduler.enabled"),
        ('[agent]\nstream = "true"\n', "agent.stream"),
        ('[agent]\napprove_medium = "yes"\n', "agent.approve_medium"),
        ('[tools.shell]\nnetwork = "on"\n', "tools.shell.network"),
        ('[tools.web]\nallow_private = "yes"\n', "tools.web.allow_private"),
        (
            '[channels.telegram]\nenabled = true\ntoken = "1:x"\nallow_all = "yes"\n',
            "channels.telegram.allow_all",
        ),
    ],
)
def test_a_switch_that_is_not_a_boolean_names_its_key(tmp_path: Path, body: str, key: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[hub]\ndata_dir = "{tmp_path / "d"}"\n' + body)
    proc = cli("config", "check", "--config", str(cfg), home=tmp_path)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("autohands: error: ")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert any(f"{key}: Input should be a valid boolean" in line for line in errors), proc.stderr


def test_booleans_from_the_environment_still_work() -> None:
    settings = load_settings(
        environ={"AUTOHANDS__SERVER__ENABLED": "false", "AUTOHANDS__CHANNELS__TERMINAL__ENABLED": "true"},
        user_file=False,
    )
    assert settings.server.enabled is False and "terminal" in settings.enabled_channels()


# ---------------------------------------------------------------------------- check, show, reference
def test_config_check_prints_the_channels_warnings_and_exits_0(tmp_path: Path) -> None:
    body = '[agent]\nruntime = "none"\n[channels.telegram]\nenabled = true\ntoken = "1:x"\nallow_users = ["alice"]\n'
    proc = cli("config", "check", "--config", str(config_file(tmp_path, body)), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warnings = proc.stderr.splitlines()
    assert warnings and all(w.startswith("autohands: warning: [channels.telegram]") for w in warnings)
    assert "usernames" in proc.stderr
    assert "1 warning(s)" in proc.stdout


def test_config_show_masks_a_token(tmp_path: Path) -> None:
    secret = "123456:AAsecret-token-value"
    body = f'[agent]\nruntime = "none"\n[channels.telegram]\nenabled = true\ntoken = "{secret}"\nallow_all = true\n'
    proc = cli("config", "show", "--config", str(config_file(tmp_path, body)), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert secret not in proc.stdout and secret.split(":")[1] not in proc.stdout
    assert "[channels.telegram]" in proc.stdout and 'token = "***"' in proc.stdout


def test_config_reference_is_markdown(tmp_path: Path) -> None:
    proc = cli("config", "reference", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("#") and "[channels.telegram]" in proc.stdout


def test_config_without_an_action_names_them(tmp_path: Path) -> None:
    proc = cli("config", home=tmp_path)
    assert proc.returncode == 2 and "check, show, reference" in proc.stderr


def test_a_switch_read_from_the_environment_is_a_boolean(tmp_path: Path) -> None:
    """Strict booleans refused ``enabled = "${X:-true}"`` (a string); a whole reference that
    reads true/false is a boolean, and text around a reference stays text."""
    from hub.config import substitute_env

    assert substitute_env({"on": "${ON:-true}", "off": "${OFF}"}, {"OFF": "False"}) == {"on": True, "off": False}
    assert substitute_env({"t": "x${ON:-true}", "s": "${S}"}, {"S": "yes"}) == {"t": "xtrue", "s": "yes"}
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nenabled = "${SERVE:-false}"\n')
    assert load_settings(cfg, environ={}).server.enabled is False


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "hub.example.com"])
def test_a_server_reachable_from_other_machines_needs_a_key(host: str) -> None:
    with pytest.raises(ConfigError, match=r"no api_keys are set: set \[server\] api_keys"):
        load_settings(environ={"AUTOHANDS__SERVER__HOST": host}, user_file=False)
    keyed = {"AUTOHANDS__SERVER__HOST": host, "AUTOHANDS__SERVER__API_KEYS": '["k-123"]'}
    assert load_settings(environ=keyed, user_file=False).server.api_keys == ["k-123"]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_a_loopback_server_needs_no_key(host: str) -> None:
    assert load_settings(environ={"AUTOHANDS__SERVER__HOST": host}, user_file=False).server.host == host
