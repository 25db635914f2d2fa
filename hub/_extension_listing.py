"""``autohands extensions``: every extension with its state, and the Markdown reference pages.

A row's state reads the config without starting anything: ``enabled`` (config uses it),
``configured`` (a section exists but is off), ``available`` (installed, unused), ``failed``
(it cannot be imported, its manifest is wrong, or its section is invalid: ``why`` says which).
A failure only the running hub can see (an exception while a tool extension starts) shows in
``/ext`` and in what ``autohands extensions reload`` prints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ._extension_folders import ExtensionFolders
from .config import Settings, validate_section
from .config_reference import _field_docs
from .errors import AutoHandsError, PluginError
from .extensions import GROUPS, Described, Manifest, check_manifest, is_builtin, list_entry_points, load_entry_point

_TITLES = {
    "autohands.channels": "Channels",
    "autohands.providers": "Providers",
    "autohands.tools": "Tool sets",
    "autohands.agents": "Agents",
    "autohands.memory": "Memory backends",
}
_SECTIONS = {
    "autohands.channels": "[channels.{id}]",
    "autohands.providers": '[providers.<name>] with kind = "{id}"',
    "autohands.tools": "[tools.{id}]",
}


@dataclass(frozen=True, slots=True)
class ExtensionRow:
    group: str
    name: str
    source: str
    """``built-in``, ``installed`` (another package) or the folder extension's path."""
    manifest: Manifest | None
    state: str
    why: str = ""


# ---------------------------------------------------------------------------- rows
def extension_rows(settings: Settings, folders: ExtensionFolders | None) -> list[ExtensionRow]:
    """Every installed and folder extension, group by group, with its state under ``settings``."""
    rows: list[ExtensionRow] = []
    for group in GROUPS:
        for ep in list_entry_points(group):
            rows.append(_installed_row(settings, group, ep.name, "built-in" if is_builtin(ep) else "installed"))
        if folders is not None:
            for ext in folders.extensions():
                rows += [
                    _folder_row(settings, group, name, ext.manifest, str(ext.path))
                    for name in ext.entry_points.get(group, {})
                ]
    if folders is not None:
        rows += [ExtensionRow("folders", f.key, str(f.path), None, "failed", f.error) for f in folders.failed()]
    return rows


def _installed_row(settings: Settings, group: str, name: str, source: str) -> ExtensionRow:
    try:
        loaded = load_entry_point(group, name)
        manifest = check_manifest(loaded.manifest, f"extension {name!r}") if isinstance(loaded, Described) else None
    except PluginError as exc:
        return ExtensionRow(group, name, source, None, "failed", str(exc))
    return _folder_row(settings, group, name, manifest, source)


def _folder_row(settings: Settings, group: str, name: str, manifest: Manifest | None, source: str) -> ExtensionRow:
    disabled = name in settings.extensions.get("disabled", ())
    state, why = ("disabled", "in [extensions] disabled") if disabled else _state(settings, group, name, manifest)
    return ExtensionRow(group, name, source, manifest, state, why)


def _state(settings: Settings, group: str, name: str, manifest: Manifest | None) -> tuple[str, str]:
    model = manifest.config if manifest is not None else None
    if group == "autohands.channels":
        sections = {k: s for k, s in settings.channels.items() if s.get("kind", k) == name}
        body = {k: {f: v for f, v in s.items() if f != "kind"} for k, s in sections.items()}
        return _sections_state(sections, body, model, "channels", lambda s: s.get("enabled") is True)
    if group == "autohands.providers":
        sections = {k: s for k, s in settings.providers.items() if s.get("kind") == name}
        return _sections_state(sections, sections, model, "providers", lambda s: True)
    if group == "autohands.tools":
        enabled = settings.tools.get("enabled")
        builtin_off = isinstance(enabled, list) and name not in enabled and name in _builtin_tool_sets()
        return ("available", "not in [tools] enabled") if builtin_off else ("enabled", "")
    if group == "autohands.agents":
        return ("enabled", "") if settings.agent.get("runtime", "llm") == name else ("available", "")
    return "enabled", ""


def _sections_state(
    sections: dict[str, dict[str, Any]],
    bodies: dict[str, dict[str, Any]],
    model: Any,
    prefix: str,
    is_on: Any,
) -> tuple[str, str]:
    if not sections:
        return "available", "no section uses it"
    for key, body in bodies.items():
        if model is not None and is_on(sections[key]):  # an off table need not be complete
            try:
                validate_section(model, body, f"{prefix}.{key}")
            except AutoHandsError as exc:
                return "failed", str(exc)
    on = [k for k, s in sections.items() if is_on(s)]
    where = ", ".join(f"[{prefix}.{k}]" for k in (on or sections))
    return ("enabled", where) if on else ("configured", f"{where} (enabled = false)")


def _builtin_tool_sets() -> set[str]:
    return {ep.name for ep in list_entry_points("autohands.tools") if is_builtin(ep)}


def render_rows(rows: list[ExtensionRow]) -> str:
    """The listing: one block per group, one line per extension."""
    lines: list[str] = []
    for group in [*GROUPS, "folders"]:
        block = [r for r in rows if r.group == group]
        if not block:
            continue
        lines.append(_TITLES.get(group, "Folder extensions that failed"))
        for r in block:
            version = r.manifest.version if r.manifest is not None else "-"
            desc = r.manifest.description if r.manifest is not None else ""
            state = f"{r.state}: {r.why}" if r.why else r.state
            lines.append(f"  {r.name:<12} {version:<8} {r.source:<10} {state}")
            if desc:
                lines.append(f"  {'':<12} {desc}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- docs
def render_docs(rows: list[ExtensionRow]) -> str:
    """docs/EXTENSIONS.md: each extension's manifest and config schema, group by group."""
    out = [
        "# Extensions",
        "",
        "Generated by `autohands extensions docs` from each extension's manifest and the JSON schema",
        "of its config model; `tests/hub/test_extensions.py` checks it is current. How to write one:",
        "`docs/EXTENSION_GUIDE.md`. Config keys in full, with examples: `docs/CONFIG.md`.",
    ]
    for group in GROUPS:
        block = [r for r in rows if r.group == group and r.manifest is not None]
        if block:
            out += ["", f"## {_TITLES[group]}"]
            for row in block:
                assert row.manifest is not None
                out += ["", *_manifest_markdown(group, row.name, row.manifest)]
    return "\n".join(out) + "\n"


def _manifest_markdown(group: str, name: str, m: Manifest) -> Iterator[str]:
    yield f"### {m.title} (`{name}`)"
    yield ""
    if m.description:
        yield m.description
        yield ""
    yield f"- version {m.version}, by {m.author}"
    if m.provides:
        yield "- provides: " + ", ".join(f"`{p}`" for p in m.provides)
    yield "- permissions: " + (", ".join(f"`{p}`" for p in m.permissions) or "none")
    if m.secrets:
        yield "- secrets: " + ", ".join(f"`{s}`" for s in m.secrets)
    for key, value in sorted(m.extra.items()):
        yield f"- {key}: {value}"
    if m.config is None:
        return
    section = _SECTIONS.get(group, "its section").format(id=name)
    yield ""
    yield f"Config (`{section}`, model `{m.config.__name__}`):"
    yield ""
    yield "| key | type | default | description |"
    yield "|---|---|---|---|"
    docs = _field_docs(m.config)
    schema = m.config_schema()
    for key, prop in schema.get("properties", {}).items():
        doc = " ".join((prop.get("description") or docs.get(key, "")).split())
        yield f"| `{key}` | {_schema_type(prop)} | {_default(m.config, key, prop)} | {_cell(doc)} |"


def _schema_type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return "table " + str(prop["$ref"]).rsplit("/", 1)[-1]
    if "enum" in prop:
        return " \\| ".join(json.dumps(v) for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_schema_type(p) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array" and isinstance(prop.get("items"), dict):
        return f"list of {_schema_type(prop['items'])}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"table of {_schema_type(prop['additionalProperties'])}"
    if prop.get("format") == "password":
        return "secret string"
    return str(kind)


def _default(model: type[BaseModel], key: str, prop: dict[str, Any]) -> str:
    field = model.model_fields.get(key)
    if field is None or field.is_required():
        return "required"
    value = prop["default"] if "default" in prop else field.get_default(call_default_factory=True)
    text = json.dumps(value, ensure_ascii=False, default=str)
    return _cell(f"`{text}`" if len(text) <= 60 else f"`{text[:57]}…`")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
