"""The file ``autohands init`` writes: the answers, rendered as commented TOML, validated, and
put in place privately (0600 in a 0700 directory) without losing an existing file."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ._init_steps import ChannelSpec, ProviderSpec, Secret
from .config import DEFAULT_USER_CONFIG, load_settings, validate_section
from .extensions import load_entry_point

__all__ = ["Answers", "ChannelAnswer", "ProviderAnswer", "config_path", "render_config", "write_config"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderAnswer:
    spec: ProviderSpec
    model: str
    key: Secret | None
    """None: no key (a local server), or the vendor's variable read at run time."""
    base_url: str = ""

    def section(self) -> dict[str, str]:
        """``[providers.<spec.section>]`` as written."""
        out = {"kind": self.spec.sdk, "model": self.model}
        if self.base_url:
            out["base_url"] = self.base_url
        if self.key is not None:
            out["api_key"] = self.key.written()
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelAnswer:
    spec: ChannelSpec
    mode: str
    """``mode = …`` (Slack); empty: the channel's only way."""
    secrets: dict[str, Secret] = field(default_factory=dict)
    admin: str = ""

    def section(self) -> dict[str, object]:
        """``[channels.<name>]`` as written."""
        out: dict[str, object] = {"enabled": True}
        if self.mode:
            out["mode"] = self.mode
        out.update({key: secret.written() for key, secret in self.secrets.items()})
        if self.admin:
            out["admins"] = [self.admin]
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Answers:
    provider: ProviderAnswer
    channels: tuple[ChannelAnswer, ...]
    timezone: str

    def variables(self) -> set[str]:
        """The environment variables the file reads (``${VAR}``)."""
        secrets = [self.provider.key, *(s for c in self.channels for s in c.secrets.values())]
        return {s.env for s in secrets if s is not None and s.env}


def config_path(given: str | None) -> Path:
    """``--config``, else ``~/.autohands/config.toml``."""
    return Path(given).expanduser() if given else DEFAULT_USER_CONFIG.expanduser()


# ---------------------------------------------------------------------------- rendering
_HEADER = """\
# AutoHands configuration, written by `autohands init`; edit it freely.
# Every setting and its default: config/default.toml in AutoHands' source. `autohands config
# check` validates this file and `autohands doctor` tests it live. AUTOHANDS__SECTION__KEY
# environment variables override what is here, and "${VAR}" is read from the environment
# when the hub starts. This file may hold secrets: keep it private (mode 600).
"""


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    # A JSON string is a TOML basic string, but for DEL, which TOML wants escaped.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def _table(name: str, values: dict[str, object], notes: dict[str, str]) -> list[str]:
    lines = [f"[{name}]"]
    for key, value in values.items():
        if key in notes:
            lines.append(f"# {notes[key]}")
        lines.append(f"{key} = {_toml(value)}")
    return [*lines, ""]


def render_config(answers: Answers) -> str:
    """The commented TOML of ``answers``."""
    p = answers.provider
    lines = [_HEADER]
    lines += _table(
        "agent", {"provider": p.spec.section}, {"provider": "The model conversations use: a [providers.*] table below."}
    )
    lines += _table(f"providers.{p.spec.section}", dict(p.section()), _provider_notes(p))
    lines += _table(
        "scheduler",
        {"default_timezone": answers.timezone},
        {"default_timezone": "Reminders are read in this zone unless a user picks their own with /tz."},
    )
    for channel in answers.channels:
        lines += _table(f"channels.{channel.spec.name}", channel.section(), _channel_notes(channel))
    if not answers.channels:
        lines.append("# No channels yet: `autohands chat` talks to the agent in a terminal. To add one, run")
        lines.append("# `autohands init` again, or see [channels.*] in config/default.toml.")
    return "\n".join(lines).rstrip("\n") + "\n"


def _provider_notes(p: ProviderAnswer) -> dict[str, str]:
    notes = {"model": "The default model; /model switches it in a conversation."}
    if p.key is None and p.spec.key_env:
        notes["model"] += f" The key is read from ${p.spec.key_env}."
    if p.base_url:
        notes["base_url"] = "Any OpenAI-compatible server (it usually ends in /v1)."
    return notes


def _channel_notes(c: ChannelAnswer) -> dict[str, str]:
    notes = {"enabled": f"{c.spec.title}: set false to turn it off without losing its settings."}
    if c.admin:
        notes["admins"] = (
            "Always allowed, and may approve others. Strangers get a pairing code: `autohands pairing approve CODE`."
        )
    else:
        notes["enabled"] += " Anyone who writes to it, you too, gets a pairing code: `autohands pairing approve CODE`."
    return notes


# ---------------------------------------------------------------------------- writing
def write_config(path: Path, answers: Answers) -> Path | None:
    """Validate ``answers`` as a file, then put it at ``path`` (0600; a new directory 0700).
    An existing file is kept as ``<name>.bak``, which is returned (None when there was none).

    Raises:
        ConfigError: the written file does not load (a bug here: nothing is replaced).
    """
    _private_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(render_config(answers))
        validate_file(tmp, answers)
        backup = _keep_old(path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return backup


def _private_dir(directory: Path) -> None:
    """Make ``directory`` 0700 when it is new, or is the default ``~/.autohands`` (which also
    holds the database); someone else's existing directory is left as it is."""
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
        directory.chmod(0o700)  # mkdir's mode is reduced by the umask; chmod is exact
    elif directory == DEFAULT_USER_CONFIG.expanduser().parent and directory.stat().st_uid == os.getuid():
        directory.chmod(0o700)


def _keep_old(path: Path) -> Path | None:
    if not path.exists():
        return None
    backup = path.with_name(path.name + ".bak")
    fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(path.read_bytes())
    return backup


def validate_file(path: Path, answers: Answers) -> None:
    """``path`` loads as the hub will load it, and each channel's section validates (each
    ``${VAR}`` given a stand-in value: this shell need not have them)."""
    from .scheduler import SchedulerConfig

    stand_ins = dict.fromkeys(answers.variables(), "set-when-the-hub-runs")
    settings = load_settings(path, environ=stand_ins)
    validate_section(SchedulerConfig, settings.scheduler, "scheduler")
    for name, section in settings.enabled_channels().items():
        cls = load_entry_point("autohands.channels", section.get("kind", name))
        validate_section(cls.config_model, {k: v for k, v in section.items() if k != "kind"}, f"channels.{name}")
