"""``autohands service install | uninstall``: the systemd user unit it writes, checked by content
and, where systemd is installed, by ``systemd-analyze verify``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli_service import exec_start, render_unit

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        cwd=ROOT,
        env={**env, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def directives(unit: str) -> dict[str, str]:
    """``Key=value`` lines (comments left out; the last one wins)."""
    out: dict[str, str] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def test_the_unit_runs_this_installation_with_the_config_and_restarts_on_failure(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    proc = run_cli("service", "install", "--print", "--config", str(config), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    unit = directives(proc.stdout)
    command = unit["ExecStart"].split()
    assert Path(command[0]).is_absolute() and os.access(command[0], os.X_OK)
    assert command[-3:] == ["run", "--config", str(config)]
    assert unit["Restart"] == "on-failure"
    assert unit["WantedBy"] == "default.target"
    assert unit["EnvironmentFile"] == f"-{tmp_path / 'env'}"
    # Nothing that would stop the command sandbox (bubblewrap) from making its user namespace.
    for blocking in ("PrivateUsers", "RestrictNamespaces", "NoNewPrivileges", "ProtectSystem", "SystemCallFilter"):
        assert blocking not in unit
    assert not (tmp_path / ".config").exists()  # --print writes nothing


def test_odd_characters_in_paths_are_quoted_for_systemd() -> None:
    unit = directives(render_unit(exec_start(Path("/srv/my configs/50%$.toml")), Path("/srv/env")))
    assert unit["ExecStart"].endswith('run --config "/srv/my configs/50%%$$.toml"')


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    path = tmp_path / "autohands.service"  # verify wants the unit's own name
    path.write_text(render_unit(exec_start(Path("/srv/my configs/c.toml")), tmp_path / "env"))
    proc = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "autohands.service" not in proc.stderr, proc.stderr  # no warning about our unit


def test_install_writes_the_user_unit_and_says_how_to_start_it_and_uninstall_removes_it(tmp_path: Path) -> None:
    proc = run_cli("service", "install", "--user", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / ".config" / "systemd" / "user" / "autohands.service"
    assert "ExecStart=" in path.read_text()
    assert "systemctl --user daemon-reload && systemctl --user enable --now autohands" in proc.stdout
    assert "loginctl enable-linger" in proc.stdout
    wanted = path.parent / "default.target.wants" / "autohands.service"  # as `systemctl enable` links it
    wanted.parent.mkdir()
    wanted.symlink_to(path)
    proc = run_cli("service", "uninstall", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not path.exists() and not wanted.is_symlink()
    assert "systemctl --user stop autohands" in proc.stdout


def test_install_refuses_a_config_that_cannot_start(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[server]\nport = 'eighty'\n")
    proc = run_cli("service", "install", "--config", str(config), home=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autohands: error: ") and "server.port" in lines[0]
    assert not (tmp_path / ".config").exists()
