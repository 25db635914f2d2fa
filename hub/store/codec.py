"""JSON encoding of the bus envelopes for the store (the only place they become dicts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from ..messages import (
    Attachment,
    Button,
    ConversationRef,
    Inbound,
    JobInfo,
    Outbound,
    Sender,
)


def _dumps(d: dict[str, Any]) -> str:
    # orjson: the payload encoding is on the hot path of every message (about 10x json's speed)
    return orjson.dumps(d).decode()


_loads = orjson.loads


def _conv(c: ConversationRef) -> list[Any]:
    return [c.channel, c.chat, c.thread]


def _conv_from(v: list[Any]) -> ConversationRef:
    return ConversationRef(channel=v[0], chat=v[1], thread=v[2])


def inbound_to_json(m: Inbound) -> str:
    d: dict[str, Any] = {
        "k": m.kind,
        "c": _conv(m.conversation),
        "s": [m.sender.id, m.sender.name, m.sender.username, m.sender.is_bot, m.sender.is_admin],
        "t": m.text,
        "p": m.platform_id,
        "at": m.received_at.isoformat(),
    }
    if m.command is not None:
        d["cmd"] = m.command
    if m.button is not None:
        d["b"] = m.button
    if m.mentioned:
        d["m"] = 1
    if m.direct:
        d["d"] = 1
    if m.reply_to_platform_id is not None:
        d["r"] = m.reply_to_platform_id
    if m.attachments:
        d["a"] = [[a.name, a.mime_type, a.size, a.text] for a in m.attachments]
    if m.job is not None:
        j = m.job
        d["j"] = [j.job_id, j.action, j.due_at.isoformat(), j.late_seconds, j.missed, j.description]
        if j.granted_tools:
            d["j"].append(list(j.granted_tools))
    return _dumps(d)


def inbound_from_json(raw: str, *, row_id: int = 0) -> Inbound:
    d = _loads(raw)
    s = d["s"]
    job = None
    if "j" in d:
        j = d["j"]
        job = JobInfo(
            job_id=j[0],
            action=j[1],
            due_at=datetime.fromisoformat(j[2]),
            late_seconds=j[3],
            missed=j[4],
            description=j[5],
            granted_tools=tuple(j[6]) if len(j) > 6 else (),
        )
    return Inbound(
        kind=d["k"],
        conversation=_conv_from(d["c"]),
        sender=Sender(id=s[0], name=s[1], username=s[2], is_bot=s[3], is_admin=s[4]),
        text=d["t"],
        platform_id=d["p"],
        command=d.get("cmd"),
        button=d.get("b"),
        job=job,
        mentioned=bool(d.get("m")),
        direct=bool(d.get("d")),
        reply_to_platform_id=d.get("r"),
        attachments=tuple(Attachment(name=a[0], mime_type=a[1], size=a[2], text=a[3]) for a in d.get("a", ())),
        received_at=datetime.fromisoformat(d["at"]),
        id=row_id,
    )


def outbound_to_json(m: Outbound) -> str:
    d: dict[str, Any] = {"c": _conv(m.conversation), "t": m.text, "id": m.id}
    if not m.final:
        d["f"] = 0
    for key, value in (("s", m.stream), ("r", m.reply_to_platform_id), ("e", m.edit_of), ("eph", m.ephemeral_to)):
        if value is not None:
            d[key] = value
    if m.buttons:
        d["b"] = [[b.id, b.label, b.style] for b in m.buttons]
    if m.inbound_id:
        d["i"] = m.inbound_id
    if m.format != "markdown":
        d["fmt"] = m.format
    return _dumps(d)


def outbound_from_json(raw: str) -> Outbound:
    d = _loads(raw)
    return Outbound(
        conversation=_conv_from(d["c"]),
        text=d["t"],
        id=d["id"],
        final=bool(d.get("f", 1)),
        stream=d.get("s"),
        reply_to_platform_id=d.get("r"),
        buttons=tuple(Button(id=b[0], label=b[1], style=b[2]) for b in d.get("b", ())),
        edit_of=d.get("e"),
        inbound_id=d.get("i", 0),
        format=d.get("fmt", "markdown"),
        ephemeral_to=d.get("eph"),
    )
