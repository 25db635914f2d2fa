"""Credentials in URLs never reach what people and logs see: doctor, log lines, store errors."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from hub.logs import RedactingFilter
from hub.redact import mask_urls, masked_url
from tests.hub.test_cli import run_cli


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:hunter2@db:5432/hub", "postgresql://***@db:5432/hub"),
        ("https://sk-live-abc@proxy.example/v1", "https://***@proxy.example/v1"),
        ("https://api.example/v1?api_key=abc123&model=x", "https://api.example/v1?api_key=***&model=x"),
        (
            "https://h.example/p?X-Amz-Signature=ff&X-Amz-Credential=k&n=1",
            "https://h.example/p?X-Amz-Signature=***&X-Amz-Credential=***&n=1",
        ),
        ("http://h/v1?token=t&access_token=u#frag", "http://h/v1?token=***&access_token=***#frag"),
        ("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
        ("sqlite:////home/ana/.autohands/autohands.db", "sqlite:////home/ana/.autohands/autohands.db"),
        ("not a url", "not a url"),
    ],
)
def test_masked_url(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def test_every_url_in_a_log_line_is_masked() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("tests.redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning(
            "provider %s failed; fallback %s",
            "https://user:pa55word@llm.example/v1",
            "https://llm2.example/v1?key=k-123",
        )
    finally:
        log.removeHandler(handler)
    line = stream.getvalue()
    assert "pa55word" not in line and "k-123" not in line
    assert "https://***@llm.example/v1" in line and "https://llm2.example/v1?key=***" in line
    assert mask_urls("no url here") == "no url here"


def test_doctor_masks_a_provider_base_url_with_credentials(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[hub]\ndata_dir = "{tmp_path / "d"}"\n'
        '[providers.proxy]\nkind = "openai"\nmodel = "m"\n'
        'base_url = "https://alice:s3cr3tpw@proxy.example/v1?api_key=k3y-v4lue"\n'
    )
    proc = run_cli("doctor", "--config", str(cfg), home=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "s3cr3tpw" not in proc.stdout + proc.stderr and "k3y-v4lue" not in proc.stdout + proc.stderr
    assert "https://***@proxy.example/v1?api_key=***" in proc.stdout


def test_secrets_never_reach_the_log_file(tmp_path: Path) -> None:
    from hub.logs import setup_logging
    from tests.hub.test_logs_cli import restored_logging

    path = tmp_path / "logs" / "autohands.log"
    token = "123456789:" + "A" * 35
    with restored_logging():
        setup_logging("DEBUG", secrets=["config-secret-value"], file=path, stderr_level="OFF")
        log = logging.getLogger("hub.test")
        log.debug("calling https://bot:pa55word@api.example/x?token=t0k3n with %s", token)
        try:
            raise RuntimeError("failed with config-secret-value")
        except RuntimeError:
            log.exception("incident ab12cd34")
    text = path.read_text()
    assert "incident ab12cd34" in text and "RuntimeError: failed with ***" in text
    for secret in ("config-secret-value", "pa55word", "t0k3n", token):
        assert secret not in text
