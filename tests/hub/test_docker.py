"""The Dockerfile and compose.yaml: their key lines, the image's health check against a real hub,
and, where a Docker daemon answers and can fetch the base image, a build that runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def one(name: str) -> str:
    found = [args for word, args in instructions() if word == name]
    assert found, f"no {name} in the Dockerfile"
    return found[-1]


def test_the_image_installs_the_project_with_bubblewrap_and_runs_as_a_user_of_its_own() -> None:
    version = re.fullmatch(r"python:3\.(\d+)-slim.*", one("FROM"))
    assert version and int(version.group(1)) >= 11
    runs = " ".join(args for word, args in instructions() if word == "RUN")
    assert "pip install ." in runs and "bubblewrap" in runs
    assert one("USER") not in ("root", "0")
    env = " ".join(args for word, args in instructions() if word == "ENV")
    assert "AUTOHANDS__HUB__DATA_DIR=/data" in env
    assert "/data" in one("VOLUME")
    assert "/healthz" in one("HEALTHCHECK")
    assert json.loads(one("CMD")) == ["autohands", "run"]


def test_the_build_context_holds_what_the_copies_need() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for word, args in instructions():
        if word == "COPY":
            *sources, _dest = args.split()
            assert set(sources) <= kept, f"COPY {args}: .dockerignore leaves out {set(sources) - kept}"
            assert all((ROOT / s).exists() for s in sources)


def test_compose_names_the_env_file_the_volume_and_a_loopback_port() -> None:
    """A light check that needs no YAML parser (PyYAML is not a test dependency)."""
    lines = [ln.strip() for ln in (ROOT / "compose.yaml").read_text().splitlines() if not ln.lstrip().startswith("#")]
    for expected in ("autohands:", "build: .", "env_file:", "- path: .env", "- autohands-data:/data"):
        assert expected in lines
    assert '- "127.0.0.1:8080:8080"' in lines


def test_compose_runs_the_image_with_an_env_file_and_the_data_volume() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (the light check above ran)")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["autohands"]
    assert service["build"] == "."
    assert any((e if isinstance(e, str) else e["path"]) == ".env" for e in service["env_file"])
    volume, _, target = service["volumes"][0].partition(":")
    assert target == "/data" and volume in compose["volumes"]
    assert service["environment"]["AUTOHANDS__HUB__DATA_DIR"] == "/data"
    # The server listens on every interface inside the container, so the host publishes it on
    # its loopback only: a reverse proxy decides what reaches the webhooks.
    assert all(str(p).startswith("127.0.0.1:") for p in service["ports"])
    assert service["restart"] == "unless-stopped"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def health_check(port: int) -> int:
    """The image's HEALTHCHECK command, run here (this Python for the image's ``python``)."""
    command = json.loads(one("HEALTHCHECK").split(" CMD ", 1)[1])
    assert command[0] == "python"
    env = {**os.environ, "AUTOHANDS__SERVER__PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode


def test_the_health_check_passes_while_the_hub_runs_and_fails_when_it_does_not(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "AUTOHANDS__HUB__DATA_DIR": str(tmp_path / "data"),
        "AUTOHANDS__SERVER__PORT": str(port),
        "AUTOHANDS__AGENT__RUNTIME": "echo",
    }
    hub = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "run", "--log-level", "INFO"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert hub.stderr is not None
        for line in hub.stderr:  # until the server listens (or the hub ends: the loop ends)
            if "HTTP server listening" in line:
                break
        assert health_check(port) == 0
    finally:
        hub.terminate()
        hub.wait(timeout=30)
    assert health_check(port) != 0


# ---------------------------------------------------------------------------- a real build
def docker_problem() -> str | None:
    """Why the image cannot be built here (None: it can be tried)."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        proc = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "the docker daemon does not answer"
    if proc.returncode != 0:
        reason = next((ln for ln in proc.stderr.splitlines() if ln.strip()), "docker info failed")
        return f"the docker daemon does not answer ({reason.strip()})"
    return None


_OFFLINE = (
    "failed to resolve",
    "failed to fetch",
    "pull access",
    "dial tcp",
    "no such host",
    "timeout",
    "TLS",
    "lookup",
)


@pytest.mark.timeout(1200)
def test_the_image_builds_and_runs_autohands() -> None:
    problem = docker_problem()
    if problem is not None:
        print(f"skipped: {problem}")
        pytest.skip(problem)
    tag = f"autohands-test:{os.getpid()}-{int(time.time())}"
    build = subprocess.run(["docker", "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=1100)
    if build.returncode != 0 and any(word.lower() in build.stderr.lower() for word in _OFFLINE):
        reason = "the build cannot fetch the base image or packages (no internet?)"
        print(f"skipped: {reason}")
        pytest.skip(reason)
    assert build.returncode == 0, build.stderr[-3000:]
    try:
        run = subprocess.run(
            ["docker", "run", "--rm", tag, "autohands", "--version"], capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0 and run.stdout.startswith("autohands "), run.stderr
        uid = subprocess.run(["docker", "run", "--rm", tag, "id", "-u"], capture_output=True, text=True, timeout=120)
        assert uid.stdout.strip() not in ("", "0")
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, timeout=120)
