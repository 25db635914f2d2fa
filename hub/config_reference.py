"""The configuration as people read it: ``docs/CONFIG.md`` generated from the config models
(``render_reference``), and the configuration a hub runs with, secrets masked (``render_effective``).

Each section is documented by the pydantic model that validates it: the hub's own from
``hub.config`` and ``hub.scheduler``, a channel's by its class's ``config_model`` (entry points
``autohands.channels``), the agents' through the entry-point group ``autohands.config`` (a
function returning ``{section key: model}``), so the hub imports neither ``channels`` nor
``agents``. A key's description is its attribute docstring, read from the source with ``ast``
(pydantic keeps attribute docstrings only for models that opt in, and opting in changes their
JSON schema).
"""

from __future__ import annotations

import ast
import enum
import inspect
import itertools
import json
import math
import re
import textwrap
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeGuard, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr, TypeAdapter
from pydantic.fields import FieldInfo

from .config import ENV_PREFIX, Settings, validate_section
from .errors import ConfigError, PluginError
from .extensions import Described, list_entry_points, load_entry_point
from .redact import MASK, mask_urls, secret_key
from .scheduler import SchedulerConfig

__all__ = ["render_effective", "render_reference"]

CONFIG_GROUP = "autohands.config"
"""Entry points naming a function that returns ``{section key: model}`` (``agents.config:config_models``)."""
_DEFAULT_RUNTIME = "llm"  # what hub.app runs when [agent] runtime is unset


@dataclass(frozen=True, slots=True)
class _Section:
    key: str
    """The TOML table: ``hub``, ``providers.<name>``, ``channels.telegram``."""
    model: type[BaseModel]
    note: str = ""


@dataclass(frozen=True, slots=True)
class _Row:
    key: str
    type: str
    default: str
    doc: str


# ---------------------------------------------------------------------------- the sections
def _core_sections() -> list[_Section]:
    """The hub's own tables, in ``Settings`` order, then the scheduler's."""
    sections = [
        _Section(name, field.annotation) for name, field in Settings.model_fields.items() if _is_model(field.annotation)
    ]
    return [*sections, _Section("scheduler", SchedulerConfig)]


def _extension_models() -> dict[str, type[BaseModel]]:
    """``{section key: model}`` from every ``autohands.config`` entry point, by entry-point name."""
    out: dict[str, type[BaseModel]] = {}
    for ep in list_entry_points(CONFIG_GROUP):
        provider = load_entry_point(CONFIG_GROUP, ep.name)
        models = provider() if callable(provider) else None
        if not isinstance(models, Mapping) or not all(_is_model(m) for m in models.values()):
            raise PluginError(f"extension {ep.name!r} ({ep.value}) must return a mapping of section → pydantic model")
        out.update({str(key): model for key, model in models.items()})
    return out


def _channel_sections() -> list[_Section]:
    """One table per installed channel, by entry-point name."""
    sections = []
    for ep in list_entry_points("autohands.channels"):
        cls = load_entry_point("autohands.channels", ep.name)
        note = cls.manifest.description if isinstance(cls, Described) else ""
        sections.append(_Section(f"channels.{ep.name}", cls.config_model, note))
    return sections


def _all_sections() -> Iterator[_Section]:
    extension = [_Section(key, model) for key, model in _extension_models().items()]
    for section in (*_core_sections(), *extension, *_channel_sections()):
        yield from _with_nested(section)


def _with_nested(section: _Section) -> Iterator[_Section]:
    """``section``, then each table nested in it (``[agent.compaction]``, ``[tools.shell.programs.<name>]``)."""
    yield section
    for name, field in section.model.model_fields.items():
        nested = _nested_model(field.annotation)
        if nested is not None:
            model, suffix = nested
            yield from _with_nested(_Section(f"{section.key}.{name}{suffix}", model))


def _nested_model(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """The model of a nested table and its key's suffix (``.<name>`` for a table of tables)."""
    if _is_model(annotation):
        return annotation, ""
    if get_origin(annotation) is dict and _is_model(get_args(annotation)[1]):
        return get_args(annotation)[1], ".<name>"
    return None


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


# ---------------------------------------------------------------------------- keys → rows
def _hub_rows(key: str) -> list[_Row]:
    """Keys the hub reads before a section reaches its model."""
    if key == "agent":
        runtimes = ", ".join(ep.name for ep in list_entry_points("autohands.agents"))
        doc = f"Which agent answers: an `autohands.agents` entry point (installed: {runtimes})."
        return [_Row("runtime", "string", f"`{_toml_value(_DEFAULT_RUNTIME)}`", doc)]
    if key.startswith("channels.") and key.count(".") == 1:
        channels = ", ".join(ep.name for ep in list_entry_points("autohands.channels"))
        doc = (
            f"The adapter ({channels}) when the table's name is not one, e.g. a second Slack "
            'workspace as `[channels.slack_work]` with `kind = "slack"`.'
        )
        return [_Row("kind", "string", "the table's name", doc)]
    return []


def _rows(section: _Section) -> list[_Row]:
    docs = _field_docs(section.model)
    rows = [_row(section.key, name, field, docs.get(name, "")) for name, field in section.model.model_fields.items()]
    return [*_hub_rows(section.key), *rows]


def _row(section: str, name: str, field: FieldInfo, doc: str) -> _Row:
    nested = _nested_model(field.annotation)
    if nested is None:
        return _Row(name, _type_text(field), _default_text(field), doc)
    model, suffix = nested
    shape = "table" if suffix == "" else "tables"
    return _Row(name, f"{shape} `[{section}.{name}{suffix}]`", "see there", doc or _intro(_Section("", model)))


def _field_docs(model: type[BaseModel]) -> dict[str, str]:
    """Each field's attribute docstring (the string right under it), base classes first."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (issubclass(cls, BaseModel) and cls is not BaseModel):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError, SyntaxError):  # no source (a compiled or generated class)
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, after in itertools.pairwise(body):
            doc = _docstring(after)
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and doc is not None:
                docs[stmt.target.id] = inspect.cleandoc(doc)
    return docs


def _docstring(stmt: ast.stmt) -> str | None:
    """The text of a bare string statement (an attribute docstring), else None."""
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
        return stmt.value.value
    return None


_SCALARS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    SecretStr: "secret string",
}


def _type_name(annotation: Any) -> str:
    """``annotation`` in TOML's words: ``integer``, ``list of string``, ``"http" | "socket"``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(_toml_value(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"table of {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(_toml_value(m.value) for m in annotation)
    if _is_model(annotation) or is_dataclass(annotation):
        return "table"
    return _SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))


_BOUNDS: tuple[tuple[type[Any], str, str], ...] = (
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.MinLen, "min_length", "length ≥"),
)


def _type_text(field: FieldInfo) -> str:
    """The type, with the bounds the model enforces (``integer, ≥ 1``)."""
    bounds = [
        f"{sign} {getattr(meta, attr)}"
        for meta in field.metadata
        for kind, attr, sign in _BOUNDS
        if isinstance(meta, kind)
    ]
    return ", ".join([_type_name(field.annotation), *bounds])


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    return f"`{_toml_value(TypeAdapter(field.annotation or Any).dump_python(value, mode='json'))}`"


# ---------------------------------------------------------------------------- TOML text
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    # JSON's escapes are valid TOML basic-string escapes; TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    """One JSON-like value as inline TOML (``None`` inside a table is left out: TOML has no null)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = [f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _toml_table(path: str, table: Mapping[str, Any], notes: Mapping[str, str]) -> list[str]:
    """``[path]`` and its keys, then its sub-tables (every non-empty one: the layout of
    ``config/default.toml``); an unset key becomes a comment."""
    lines = [f"[{path}]"]
    if path in notes:
        lines.append(f"# {notes[path]}")
    nested: list[str] = []
    for key, value in table.items():
        sub = f"{path}.{_toml_key(key)}"
        if value is None:
            lines.append(f"# {_toml_key(key)}: unset")
        elif isinstance(value, dict) and value:
            nested.extend(["", *_toml_table(sub, value, notes)])
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return lines + nested


# ---------------------------------------------------------------------------- docs/CONFIG.md
_PREAMBLE = f"""\
# Configuration reference

<!-- Generated from the config models: run `autohands config reference > docs/CONFIG.md` after
changing one; edit the models' docstrings, not this file. -->

AutoHands reads its configuration once, at start-up, in three layers, each overriding the one
before it:

1. the shipped defaults, [`config/default.toml`](../config/default.toml);
2. your file: `--config PATH`, else `~/.autohands/config.toml` when it exists;
3. environment variables `{ENV_PREFIX}SECTION__KEY` ([below](#environment-variables)).

Any string value may read the environment: `${{VAR}}` is replaced by the variable's value (a
variable that is not set is an error naming the key), `${{VAR:-default}}` falls back to
`default`. `autohands config check` validates everything that is enabled (an error names the
key; an unknown key is an error that lists the keys allowed there), and `autohands config show`
prints the effective configuration with every secret masked.

Each heading below is a TOML table; `<name>` stands for a name you choose. A channel's table is
validated only when it has `enabled = true`; "required" keys must then be set. The channel pages
say how to get each token: [Telegram](channels/telegram.md), [Slack](channels/slack.md),
[Discord](channels/discord.md), [terminal](channels/terminal.md).
"""

_ENVIRONMENT = f"""\
## Environment variables

| variable | read by | what it does |
|---|---|---|
| `{ENV_PREFIX}SECTION__KEY` | the hub | Sets any key: `{ENV_PREFIX}SERVER__PORT=9000`, \
`{ENV_PREFIX}CHANNELS__TELEGRAM__ENABLED=true`. Names are case-insensitive and `__` separates \
the levels; the value is read as a TOML value when it parses as one (`true`, `9000`, \
`["a", "b"]`), else as a string. It overrides both files. |
| `OPENAI_API_KEY` | the agent | The key of a `kind = "openai"` provider that sets no `api_key`. \
With no `[providers.<name>]` table at all, its presence alone configures an OpenAI provider \
with a default model. |
| `ANTHROPIC_API_KEY` | the agent | The same for `kind = "anthropic"`; with no provider tables \
it is used when `OPENAI_API_KEY` is not set. |
| `OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL` | the openai and anthropic SDKs | The endpoint of a \
provider whose `base_url` is unset (its API key is still needed). Prefer `base_url`, which is \
explicit. |
| `TZ` | the scheduler | The host's time zone, for `[scheduler] default_timezone = "local"`. |
| `HOME` | the hub | What `~` means in paths (`[hub] data_dir`, the config file). |
{{examples}}

Values of environment variables whose names end in `_API_KEY`, `_TOKEN` or `_SECRET` are kept
out of log lines, as are the config's secrets.
"""


def _example_variables() -> str:
    """The table rows for the variables ``config/default.toml`` reads through ``${VAR}``."""
    shipped = Path(__file__).resolve().parent.parent / "config" / "default.toml"
    text = shipped.read_text(encoding="utf-8") if shipped.is_file() else ""
    names = sorted(set(re.findall(r"\"\$\{([A-Z][A-Z0-9_]*)", text)) - {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"})
    if not names:
        return ""
    listed = ", ".join(f"`{n}`" for n in names)
    return (
        f"| {listed} | your config | Not read by themselves: the shipped examples read the tokens "
        f'from them (`token = "${{TELEGRAM_BOT_TOKEN}}"`); any name works. |'
    )


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, RST literals as code, pipes escaped."""
    return " ".join(text.replace("``", "`").split()).replace("|", "\\|")


def _section_markdown(section: _Section) -> list[str]:
    lines = [f"## `[{section.key}]`", ""]
    intro = _intro(section)
    if intro:
        lines += [intro, ""]
    lines += ["| key | type | default | what it does |", "|---|---|---|---|"]
    for row in _rows(section):
        lines.append(f"| `{row.key}` | {_cell(row.type)} | {_cell(row.default)} | {_cell(row.doc)} |")
    return [*lines, ""]


def _intro(section: _Section) -> str:
    """The model's docstring without its leading ``[table]`` tag, or the section's note."""
    doc = inspect.cleandoc(section.model.__dict__.get("__doc__") or "")
    doc = re.sub(r"^``\[[^\]]*\]``[.:;]?\s*", "", doc)
    text = _cell(doc or section.note)
    text = text if not text or text.endswith((".", ")")) else text + "."
    return text[:1].upper() + text[1:]


def render_reference() -> str:
    """``docs/CONFIG.md``: every table and key with its type, default and meaning, then the
    environment variables. Byte-stable: the order is the models' and the entry points' names'."""
    lines = [_PREAMBLE]
    for section in _all_sections():
        lines += _section_markdown(section)
    lines.append(_ENVIRONMENT.replace("{examples}", _example_variables()))
    return "\n".join(lines)


# ---------------------------------------------------------------------------- autohands config show
def render_effective(settings: Settings) -> str:
    """The configuration the hub runs with (defaults ← file ← environment) as TOML, every model's
    defaults filled in and every secret shown as ``***`` (credentials inside URLs too).

    A section that does not validate (a disabled channel without its token, a typo) is shown as
    written, with a comment; ``autohands config check`` names the problem.
    """
    models = _extension_models()
    notes: dict[str, str] = {}
    data: dict[str, Any] = {
        name: value.model_dump(mode="json")
        for name in Settings.model_fields
        if isinstance(value := getattr(settings, name), BaseModel)
    }
    agent = {k: v for k, v in settings.agent.items() if k != "runtime"}
    data["agent"] = {"runtime": settings.agent.get("runtime", _DEFAULT_RUNTIME)}
    data["agent"].update(_effective(models.get("agent"), agent, "agent", notes))
    data["providers"] = {
        name: _effective(models.get("providers.<name>"), raw, f"providers.{name}", notes)
        for name, raw in settings.providers.items()
    }
    data["tools"] = _effective(models.get("tools"), settings.tools, "tools", notes)
    data["scheduler"] = _effective(SchedulerConfig, settings.scheduler, "scheduler", notes)
    data["channels"] = {name: _effective_channel(name, raw, notes) for name, raw in settings.channels.items()}
    head = "# The effective configuration: shipped defaults ← your file ← environment; secrets are shown as ***."
    lines = [head]
    for name, table in _masked(data).items():
        lines += ["", *_toml_table(name, table, notes)]
    return "\n".join(lines) + "\n"


def _effective(
    model: type[BaseModel] | None, raw: Mapping[str, Any], key: str, notes: dict[str, str]
) -> dict[str, Any]:
    """``raw`` validated by ``model``, its defaults filled in; as written when it does not validate."""
    if model is None:
        return dict(raw)
    try:
        return validate_section(model, raw, key).model_dump(mode="json")
    except ConfigError:
        notes[key] = "as written: it does not validate (autohands config check says why)"
        return dict(raw)


def _effective_channel(name: str, raw: Mapping[str, Any], notes: dict[str, str]) -> dict[str, Any]:
    """An enabled channel's section through its model; a disabled one as written."""
    if not raw.get("enabled", False):
        return dict(raw)
    kind = raw.get("kind", name)
    try:
        cls = load_entry_point("autohands.channels", str(kind))
    except PluginError:
        notes[f"channels.{name}"] = f"as written: no channel {kind!r} is installed"
        return dict(raw)
    body = {k: v for k, v in raw.items() if k != "kind"}
    section = _effective(cls.config_model, body, f"channels.{name}", notes)
    return {"kind": kind, **section} if "kind" in raw else section


def _masked(node: Any, key: str = "") -> Any:
    """``node`` with the text of secret-named keys replaced by ``***`` and URL credentials masked.
    An empty secret stays empty, so the output still tells set from unset."""
    if isinstance(node, Mapping):
        return {k: _masked(v, str(k)) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_masked(v) for v in node]
    if isinstance(node, SecretStr):
        return MASK if node.get_secret_value() else ""
    if isinstance(node, str):
        return MASK if node and secret_key(key) else mask_urls(node)
    return node
