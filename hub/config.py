"""Configuration: shipped defaults ← user file ← environment, validated by pydantic.

The core validates its own sections here; each extension (channel, provider, agent) validates
its own section with ``validate_section`` so errors name the full key
(``channels.telegram.token: Field required``).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from ._lifecycle import STOP_GRACE_SECONDS
from .errors import ConfigError

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
ENV_PREFIX = "AUTOHANDS__"
DEFAULT_USER_CONFIG = Path("~/.autohands/config.toml")
RETIRED_KEYS: dict[tuple[str, str], str] = {
    ("log", "log_message_text"): "it never had an effect (message text is not logged)",
}
"""Keys earlier versions shipped in ``config/default.toml`` that nothing reads any more: a file
that still sets one loads, with one warning saying to delete it, rather than failing as an
unknown key (copies of the shipped file set them). Anything else unknown is an error."""


def _any_case(choices: Any) -> BeforeValidator:
    """Accept a ``Literal``'s choices in any case (``normal``, ``info``, ``JSON``); anything else
    reaches validation unchanged, so the error quotes what was written."""
    canonical = {c.lower(): c for c in get_args(choices)}
    return BeforeValidator(lambda v: canonical.get(v.lower(), v) if isinstance(v, str) else v)


StrictBool = Annotated[bool, Strict()]
"""A config switch: ``true`` or ``false`` only. A lax bool reads ``enabled = "yes"`` (and
``"no"``, ``1``, ``"off"``) as a bool without a word; the strict one names the key instead."""

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubSection(_Section):
    data_dir: Path = Path("~/.autohands")
    """Where the hub keeps its database, logs, workspaces and chat history (``~`` is your home)."""


class ServerSection(_Section):
    enabled: StrictBool = True
    """Serve HTTP: ``GET /healthz`` and the platforms' webhook routes (Slack's ``http`` mode and
    Telegram's ``webhook`` mode need it)."""
    host: str = "127.0.0.1"
    """The address it listens on; ``127.0.0.1`` takes connections from this machine only."""
    port: int = Field(default=8080, ge=0, le=65535)
    """Its port; ``0`` picks a free one."""
    api_keys: list[str] = Field(default_factory=list)
    """Bearer keys for the OpenAI-compatible API, the WebSocket and the web chat (write them
    ``${VAR}``). None: the server answers only on a loopback ``host``, to this machine."""
    admin_keys: list[str] = Field(default_factory=list)
    """Keys that may also use the dashboard (approvals, jobs, every conversation). The one-time
    login link ``autohands run`` prints signs its browser in as admin."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Other web origins (``https://chat.example.com``) whose pages may open the WebSocket; the
    server's own origin always may."""
    public_url: str = ""
    """The address people reach the server at (behind a proxy, ``https://hub.example.com``);
    empty: ``http://<host>:<port>``. Used for printed links and the allowed origin."""

    @model_validator(mode="after")
    def _keys_off_loopback(self) -> ServerSection:
        if self.enabled and not (self.api_keys or self.admin_keys) and not is_loopback_host(self.host):
            raise ValueError(
                f"host {self.host!r} is reachable from other machines but no api_keys are set: "
                'set [server] api_keys (and admin_keys), or host = "127.0.0.1"'
            )
        return self


def is_loopback_host(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: an address only this machine can connect to."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class StoreSection(_Section):
    url: str = ""
    """Any SQLAlchemy URL; empty: ``autohands.db`` in ``[hub] data_dir`` (SQLite, WAL mode)."""
    synchronous: Annotated[Synchronous, _any_case(Synchronous)] = "FULL"
    """SQLite's sync level: ``FULL`` survives power loss in WAL mode, ``NORMAL`` only a crash of the hub."""


class SessionsSection(_Section):
    max_concurrent_runs: int = Field(default=100, ge=1)
    """Agent runs at once across all conversations; more wait their turn."""
    idle_seconds: float = Field(default=600, gt=0)
    """A conversation idle this long leaves memory (its history stays in the store)."""
    max_sessions_in_memory: int = Field(default=10_000, ge=1)
    """Conversations kept in memory at most; the least recently active idle ones leave first."""
    stop_grace_seconds: float = Field(default=STOP_GRACE_SECONDS, ge=0)
    """How long a stopping hub lets agent runs in progress finish before cancelling them."""


class TasksSection(_Section):
    """The task pool (``hub.tasks``; docs/ARCHITECTURE.md)."""

    poll_seconds: float = Field(default=1.0, gt=0)
    """How often a running hub looks for tasks submitted or controlled beside it (``autohands tasks``)."""
    max_background_runs: int | None = Field(default=None, ge=1)
    """Runs at once of scheduled jobs and background tasks; empty: one less than
    ``[sessions] max_concurrent_runs`` (at least one), so a chat message never waits behind them."""


class OutboxSection(_Section):
    """How replies are retried when a platform fails (``hub.outbox``; docs/ARCHITECTURE.md)."""

    give_up_after_seconds: float = Field(default=21_600, gt=0)
    """A reply whose sends keep failing for a passing reason is marked failed after this long."""
    probe_interval_seconds: float = Field(default=1.0, gt=0)
    """While a channel's sends fail, one waiting reply is tried this often to probe it."""
    first_delay_seconds: float = Field(default=1.0, gt=0)
    """First pause before re-sending a reply that fails while its channel delivers others; it
    doubles per failure up to ``max_delay_seconds``."""
    max_delay_seconds: float = Field(default=60.0, gt=0)
    """The longest such pause. A platform's own ``retry_after`` is waited out in full."""
    resend_check_seconds: float = Field(default=5.0, gt=0)
    """How often a running hub looks for replies ``autohands outbox retry`` set back to pending."""

    @model_validator(mode="after")
    def _delays_in_order(self) -> OutboxSection:
        if self.first_delay_seconds > self.max_delay_seconds:
            raise ValueError("first_delay_seconds must not be larger than max_delay_seconds")
        return self


class LogSection(_Section):
    level: Annotated[LogLevel, _any_case(LogLevel)] = "INFO"
    """The least severe lines written (any case)."""
    format: Annotated[LogFormat, _any_case(LogFormat)] = "text"
    """``text`` for people, ``json`` for one JSON object per line (``--log-format`` overrides it)."""
    file: str = "logs/autohands.log"
    """Where log lines are also written (relative to ``[hub] data_dir``); ``""`` for stderr
    only. ``autohands logs`` reads it."""
    max_bytes: int = Field(default=10_000_000, ge=10_000)
    """The log file is rotated when it grows past this size."""
    backups: int = Field(default=5, ge=0)
    """How many rotated files are kept (``autohands.log.1`` …)."""


class Settings(_Section):
    """The whole configuration. Extension sections stay raw until their extension validates them."""

    hub: HubSection = HubSection()
    server: ServerSection = ServerSection()
    store: StoreSection = StoreSection()
    sessions: SessionsSection = SessionsSection()
    outbox: OutboxSection = OutboxSection()
    tasks: TasksSection = TasksSection()
    log: LogSection = LogSection()
    agent: dict[str, Any] = {}
    providers: dict[str, dict[str, Any]] = {}
    tools: dict[str, Any] = {}
    scheduler: dict[str, Any] = {}
    channels: dict[str, dict[str, Any]] = {}
    skills: dict[str, Any] = {}
    """``[skills]``: validated by the agent (``agents/skills``)."""
    mcp: dict[str, Any] = {}
    """``[mcp]``: MCP servers as tool sources, validated by the agent (``agents/mcp``)."""
    extensions: dict[str, Any] = {}
    """``[extensions]``: extension folders loaded at run time (``hub/extensions.py``)."""
    memory: dict[str, Any] = {}
    """``[memory]``: the memory backend, validated by ``hub.memory.open``."""
    _config_file: Path | None = PrivateAttr(default=None)

    @property
    def config_file(self) -> Path | None:
        """The file these settings were read from; None for the shipped defaults alone."""
        return self._config_file

    @property
    def data_dir(self) -> Path:
        return self.hub.data_dir.expanduser()

    def protected_paths(self) -> tuple[Path, ...]:
        """The hub's own files and folders, which no tool may see: the data directory, the
        config file, the SQLite database (when the store is one) and the home directory."""
        paths = [self.data_dir, Path.home()]
        if self._config_file is not None:
            paths.append(self._config_file)
        database = sqlite_path(self.store_url)
        if database is not None:
            paths.append(database.expanduser())
        memory_file = self.memory.get("path")
        if isinstance(memory_file, str) and memory_file:  # memories outside the data directory
            paths.append(self.data_dir / Path(memory_file).expanduser())
        return tuple(dict.fromkeys(p.absolute() for p in paths))

    @property
    def log_file(self) -> Path | None:
        """``[log] file`` resolved against the data directory; None when logging to a file is off."""
        if not self.log.file:
            return None
        path = Path(self.log.file).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    @property
    def store_url(self) -> str:
        """``[store] url``, else the SQLite file in the data directory."""
        return self.store.url or default_sqlite_url(self.data_dir)

    def enabled_channels(self) -> dict[str, dict[str, Any]]:
        """The ``[channels.*]`` sections with ``enabled = true`` (checked a bool at load), and
        those whose ``enabled`` names an unset variable: running them reports it."""
        return {
            name: sec
            for name, sec in self.channels.items()
            if sec.get("enabled", False) is True or isinstance(sec.get("enabled"), Unresolved)
        }


def make_private_dir(directory: Path) -> None:
    """Create ``directory``, and each missing parent, readable by its owner only (0700): the data
    directory holds the database, the logs and the workspaces. One that exists is left as it is."""
    missing: list[Path] = []
    current = directory
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
        path.chmod(0o700)  # mkdir's mode is reduced by the umask; chmod is exact


def default_sqlite_url(data_dir: Path) -> str:
    """The database when ``[store] url`` is empty: ``autohands.db`` in ``data_dir``."""
    return f"sqlite:///{data_dir / 'autohands.db'}"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL (``sqlite:///…``, ``sqlite+pysqlite:///…?mode=rwc``);
    None for an in-memory SQLite database or any other kind of database."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    raw = url.split(":///", 1)[1].split("?", 1)[0]
    if not raw or raw == ":memory:":
        return None
    return Path(raw)


def describe_validation_error(exc: ValidationError, prefix: str, model: type[BaseModel] | None = None) -> str:
    """One clause per problem: ``channels.telegram.token: Field required``. Given the validated
    ``model``, an unknown key also gets the keys allowed there (and the likely one for a typo)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        if err["type"] == "extra_forbidden":
            parts.append(f"{loc}: unknown key{_known_keys(model, err['loc'])}")
            continue
        got = err.get("input")
        shown = ""
        if err["type"] not in ("missing",) and not isinstance(got, dict | list):
            shown = f" (got {_redact(loc, got)!r})"
        parts.append(f"{loc}: {err['msg']}{shown}")
    return "; ".join(parts)


def _known_keys(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> str:
    """`` (did you mean 'port'? allowed here: enabled, host, port)`` for an unknown key at ``loc``."""
    for part in loc[:-1]:  # down to the model that holds the unknown key
        field = model.model_fields.get(str(part)) if model is not None else None
        annotation = field.annotation if field is not None else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if model is None:
        return ""
    allowed = sorted(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f" ({hint}allowed here: {', '.join(allowed)})"


def _redact(loc: str, value: Any) -> Any:
    if any(word in loc.lower() for word in ("token", "secret", "key", "password")):
        return "***"
    return value


def validate_section(model: type[M], data: Any, prefix: str) -> M:
    """Validate one config section; raise ``ConfigError`` naming each bad key under ``prefix``
    (or the unset variable of an ``Unresolved`` value in it)."""
    problem = unresolved_problem(data)
    if problem is not None:
        raise ConfigError(problem)
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(f"invalid config: {describe_validation_error(exc, prefix, model)}") from None


# ---------------------------------------------------------------------------- loading
def shipped_defaults() -> dict[str, Any]:
    """``config/default.toml``: from the source tree, or the installed data files."""
    # The source tree (editable installs, CI) first, then the data files a wheel installs.
    candidates = [
        Path(__file__).resolve().parent.parent / "config" / "default.toml",
        Path(sys.prefix) / "share" / "autohands" / "config" / "default.toml",
    ]
    for path in candidates:
        if path.is_file():
            return _read_toml(path)
    return {}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None


def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``AUTOHANDS__CHANNELS__TELEGRAM__TOKEN=x`` → ``{"channels": {"telegram": {"token": "x"}}}``.

    Values are read as TOML scalars when they parse (``true``, ``8080``, ``["a"]``), else as strings.
    """
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        node = out
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name} conflicts with another override")
        node[path[-1]] = _parse_scalar(raw)
    return out


def _parse_scalar(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DEFERRING = ("channels", "providers")
"""Tables whose sections keep an unset ``${VAR}`` as an ``Unresolved`` value instead of failing
the load: one channel's missing token must not stop ``chat``, ``doctor`` or ``jobs list``."""


class Unresolved(str):
    """A value whose ``${VAR}`` names an unset variable, kept as written in a ``[channels.*]`` or
    ``[providers.*]`` section. ``validate_section`` raises its ``problem``, so what uses the
    section (running that channel, building that provider) fails with the same one line."""

    problem: str

    def __new__(cls, written: str, problem: str) -> Unresolved:
        value = super().__new__(cls, written)
        value.problem = problem
        return value


class _UnsetVariable(Exception):
    def __init__(self, var: str) -> None:
        self.var = var


def substitute_env(data: Any, environ: Mapping[str, str], path: str = "", *, defer: bool = False) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in string values; a missing VAR names the key.
    A value that is one reference and reads ``true`` or ``false`` becomes that boolean.

    A missing VAR raises ``ConfigError``, except under ``defer`` (the sections of the
    ``_DEFERRING`` tables), where the value becomes an ``Unresolved`` carrying that error.
    """
    if isinstance(data, dict):
        inner = defer or path in _DEFERRING
        return {k: substitute_env(v, environ, f"{path}.{k}" if path else k, defer=inner) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute_env(v, environ, f"{path}[{i}]", defer=defer) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data

    def repl(m: re.Match[str]) -> str:
        var, default = m.group(1), m.group(2)
        if var in environ:
            return environ[var]
        if default is not None:
            return default
        raise _UnsetVariable(var)

    try:
        value = _VAR.sub(repl, data)
    except _UnsetVariable as unset:
        var = unset.var
        problem = (
            f"invalid config: {path}: environment variable {var} is not set (set it, or write ${{{var}:-default}})"
        )
        if defer:
            return Unresolved(data, problem)
        raise ConfigError(problem) from None
    # A switch read from the environment (``enabled = "${TELEGRAM_ON:-false}"``) is a boolean:
    # a value that is one reference and reads true or false, as in an AUTOHANDS__ override.
    if _VAR.fullmatch(data) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def unresolved_problem(data: Any) -> str | None:
    """The error of the first ``Unresolved`` value in a section (None when it has none)."""
    if isinstance(data, Unresolved):
        return data.problem
    values = data.values() if isinstance(data, dict) else data if isinstance(data, list) else ()
    for value in values:
        problem = unresolved_problem(value)
        if problem is not None:
            return problem
    return None


def _check_channel_switches(channels: Mapping[str, Any]) -> None:
    """Each ``[channels.*]`` table with a boolean ``enabled`` (read before any channel validates
    its section, so checked here): ``enabled = "yes"`` names the key instead of meaning true."""
    switch: TypeAdapter[bool] = TypeAdapter(StrictBool)
    for name, section in channels.items():
        if not isinstance(section, dict):
            raise ConfigError(f"invalid config: channels.{name}: expected a table like [channels.{name}]")
        if "enabled" not in section or isinstance(section["enabled"], Unresolved):
            continue
        try:
            switch.validate_python(section["enabled"])
        except ValidationError as exc:
            raise ConfigError(f"invalid config: {describe_validation_error(exc, f'channels.{name}.enabled')}") from None


def _drop_retired_keys(data: dict[str, Any]) -> None:
    """Remove the ``RETIRED_KEYS`` from ``data``, with one warning each."""
    for (section, key), why in RETIRED_KEYS.items():
        table = data.get(section)
        if isinstance(table, dict) and key in table:
            del table[key]
            log.warning("config: [%s] %s is no longer read: %s; delete it from your config", section, key, why)


def load_settings(
    config_path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    user_file: bool = True,
) -> Settings:
    """Load and validate the configuration.

    ``config_path`` given → it must exist. Not given → ``~/.autohands/config.toml`` if present
    (and ``user_file``: false reads the shipped defaults alone).
    """
    env = os.environ if environ is None else environ
    data = shipped_defaults()
    source: Path | None = None
    if config_path is not None:
        path = Path(config_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (check the --config path)")
        data = merge(data, _read_toml(path))
        source = path
    elif user_file:
        user = DEFAULT_USER_CONFIG.expanduser()
        if user.is_file():
            data = merge(data, _read_toml(user))
            source = user
    data = merge(data, env_overrides(env))
    if overrides:
        data = merge(data, overrides)
    data = substitute_env(data, env)
    _drop_retired_keys(data)
    channels = data.get("channels") or {}
    if isinstance(channels, dict):
        _check_channel_switches(channels)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid config: {describe_validation_error(exc, '', Settings)}") from None
    settings._config_file = source.absolute() if source is not None else None
    return settings
