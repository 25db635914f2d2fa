"""The log file (``[log] file``) and ``autohands logs``: rotation, private files, full detail in
the file whatever stderr shows, the last lines, one incident across rotated files, and
``--follow`` across a rotation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.cli import main
from hub.logs import setup_logging
from tests.hub.test_cli import ROOT, one_error_line, run_cli


@contextlib.contextmanager
def restored_logging() -> Iterator[None]:
    """``setup_logging`` replaces the root's handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        for h in root.handlers:
            if h not in handlers:
                h.close()
        root.handlers[:] = handlers
        root.setLevel(level)


def _config(tmp_path: Path, log: str = "") -> tuple[Path, Path]:
    data = tmp_path / "data"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[hub]\ndata_dir = "{data}"\n[agent]\nruntime = "none"\n[log]\n{log}\n')
    return cfg, data / "logs" / "autohands.log"


def _incident_lines(incident: str) -> list[str]:
    return [
        f"2025-03-01 09:30:00,001 ERROR   hub.sessions: session rec:c1: agent run failed (incident {incident})\n",
        "Traceback (most recent call last):\n",
        '  File "x.py", line 1, in run\n',
        "RuntimeError: boom\n",
    ]


def test_the_file_gets_everything_private_and_redacted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "logs" / "autohands.log"
    with restored_logging():
        setup_logging("INFO", secrets=["hunter2-secret"], file=path, stderr_level="WARNING")
        log = logging.getLogger("hub.test")
        log.info("started with hunter2-secret")
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            log.error("run failed (incident %s)", "ab12cd34", exc_info=exc)
    text = path.read_text()
    assert "started with ***" in text and "hunter2" not in text
    assert "run failed (incident ab12cd34)\nTraceback (most recent call last):" in text and "RuntimeError: boom" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    err = capsys.readouterr().err
    assert "started with" not in err and "incident ab12cd34" in err  # the terminal keeps its level


def test_rotated_files_stay_private_and_stderr_can_be_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "autohands.log"
    with restored_logging():
        setup_logging("INFO", file=path, max_bytes=2_000, backups=2, stderr_level="OFF")
        for n in range(100):
            logging.getLogger(f"hub.t{n}").warning("line %d %s", n, "x" * 50)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["autohands.log", "autohands.log.1", "autohands.log.2"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in tmp_path.iterdir())
    assert "line 99 " in path.read_text() and capsys.readouterr().err == ""


def test_without_backups_the_file_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "autohands.log"
    with restored_logging():
        setup_logging("INFO", file=path, max_bytes=2_000, backups=0, stderr_level="OFF")
        for n in range(100):
            logging.getLogger(f"hub.t{n}").warning("line %d %s", n, "x" * 50)
    assert [p.name for p in tmp_path.iterdir()] == ["autohands.log"]
    assert path.stat().st_size <= 2_000 and "line 99 " in path.read_text()


def test_a_log_file_that_cannot_be_written_is_one_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocked = tmp_path / "logs"
    blocked.mkdir()
    with restored_logging():
        setup_logging("INFO", file=blocked)  # a directory where the file should be
        logging.getLogger("hub.test").warning("still logged")
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"autohands: warning: not writing the log file {blocked}") and "stderr only" in err[0]
    assert len(err) == 2 and err[1].endswith("still logged")


def test_no_log_file_is_one_clear_line(tmp_path: Path) -> None:
    cfg, _ = _config(tmp_path, 'file = ""')
    line = one_error_line(run_cli("logs", "--config", str(cfg), home=tmp_path))
    assert "[log] file is empty" in line
    cfg, path = _config(tmp_path)
    line = one_error_line(run_cli("logs", "--config", str(cfg), home=tmp_path))
    assert f"no log file at {path} yet" in line


def test_last_lines_and_one_incident_across_rotations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, path = _config(tmp_path)
    path.parent.mkdir(parents=True)
    other = "2025-03-01 09:29:00,000 INFO    hub.app: hub started\n"
    Path(f"{path}.2").write_text(other)
    Path(f"{path}.1").write_text(other + "".join(_incident_lines("ab12cd34")) + other)
    path.write_text("".join(f"2025-03-01 10:00:{n:02d},000 INFO    hub.x: line {n}\n" for n in range(60)))

    with restored_logging():
        assert main(["--config", str(cfg), "logs", "-n", "3"]) == 0
        assert capsys.readouterr().out.splitlines() == [
            f"2025-03-01 10:00:{n},000 INFO    hub.x: line {n}" for n in (57, 58, 59)
        ]
        assert main(["--config", str(cfg), "logs"]) == 0
        assert len(capsys.readouterr().out.splitlines()) == 50
        assert main(["--config", str(cfg), "logs", "--incident", "AB12CD34"]) == 0
        assert capsys.readouterr().out == "".join(_incident_lines("ab12cd34"))
        assert main(["--config", str(cfg), "logs", "--incident", "00000000"]) == 1
        err = capsys.readouterr().err
        assert "no line mentions incident 00000000" in err and "its 2 rotated file(s)" in err
        assert main(["--config", str(cfg), "logs", "--incident", "not-an-id"]) == 1
        assert "is not an incident id" in capsys.readouterr().err


async def _line(stream: asyncio.StreamReader) -> str:
    async with asyncio.timeout(10):
        return (await stream.readline()).decode()


async def test_follow_prints_new_lines_across_a_rotation(tmp_path: Path) -> None:
    cfg, path = _config(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("old\nready\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        "--config",
        str(cfg),
        "logs",
        "--follow",
        "-n",
        "1",
        cwd=ROOT,
        env={**os.environ, "HOME": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        assert await _line(proc.stdout) == "ready\n"  # printed once it is at the end
        with path.open("a") as f:
            f.write("appended\n")
        assert await _line(proc.stdout) == "appended\n"
        with path.open("a") as f:
            f.write("last before rotation\n")
        path.rename(f"{path}.1")
        path.write_text("in the new file\n")
        assert await _line(proc.stdout) == "last before rotation\n"
        assert await _line(proc.stdout) == "in the new file\n"
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
        assert (await proc.stderr.read()) == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
