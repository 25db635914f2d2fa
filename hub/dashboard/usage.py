"""Token usage and its estimated cost per conversation, user and day.

The cost is an **estimate**: tokens (as the providers reported them, ``hub/store/tables.py``
``usage``) times a list price per model from ``DEFAULT_PRICES``, matched by the longest prefix
of the model's name. A model not in the table has no cost (``null``), never a guessed one;
cache reads and writes are not priced separately. Edit the table (or pass ``prices`` to the
dashboard) for your own rates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ..store.reports import UsageRun

__all__ = ["DEFAULT_PRICES", "Price", "UsageTotals", "price_for", "summarize"]


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float


DEFAULT_PRICES: Mapping[str, Price] = {
    # OpenAI list prices, USD per 1M tokens (input, output)
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    # Anthropic list prices
    "claude-3-haiku": Price(0.25, 1.25),
    "claude-3-5-haiku": Price(0.80, 4.00),
    "claude-3-5-sonnet": Price(3.00, 15.00),
    "claude-3-7-sonnet": Price(3.00, 15.00),
    "claude-sonnet-4": Price(3.00, 15.00),
    "claude-opus-4": Price(15.00, 75.00),
}
"""The documented default price table (an estimate: check your provider's current prices)."""


def price_for(model: str, prices: Mapping[str, Price]) -> Price | None:
    """The price of the longest table entry ``model`` starts with (``gpt-4o-2024-08-06`` →
    ``gpt-4o``); None if none matches."""
    name = model.lower().rsplit("/", 1)[-1]  # "openai/gpt-4o" on routers
    best = max((p for p in prices if name.startswith(p)), key=len, default=None)
    return prices[best] if best is not None else None


@dataclass(slots=True)
class UsageTotals:
    """Tokens and estimated cost of one row of a usage table."""

    key: str
    label: str = ""
    runs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = 0.0
    """Estimated USD; None once any of its tokens came from a model without a price."""
    last: datetime | None = None

    def add(self, run: UsageRun, price: Price | None) -> None:
        self.runs += 1
        self.input_tokens += run.input_tokens
        self.output_tokens += run.output_tokens
        if price is None or self.cost is None:
            self.cost = None
        else:
            self.cost += (run.input_tokens * price.input + run.output_tokens * price.output) / 1_000_000
        if self.last is None or run.at > self.last:
            self.last = run.at

    def as_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "label": self.label or self.key,
            "runs": self.runs,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": None if self.cost is None else round(self.cost, 6),
            "last": self.last.isoformat() if self.last else None,
        }


def summarize(runs: Iterable[UsageRun], prices: Mapping[str, Price]) -> dict[str, list[dict[str, object]]]:
    """Usage totals by conversation, by user (``channel:user id``) and by UTC day, each
    largest cost first (days newest first), plus one ``total`` row and the models seen."""
    tables: dict[str, dict[str, UsageTotals]] = {"conversation": {}, "user": {}, "day": {}, "model": {}}
    total = UsageTotals(key="total")
    for run in runs:
        price = price_for(run.model, prices)
        channel = run.conversation_key.split(":", 1)[0]
        user = f"{channel}:{run.user_id}" if run.user_id else f"{channel}:?"
        for table, key, label in (
            ("conversation", run.conversation_key, ""),
            ("user", user, f"{run.user_name} ({user})" if run.user_name else ""),
            ("day", run.at.date().isoformat(), ""),
            ("model", f"{run.provider}/{run.model}", "" if price else f"{run.provider}/{run.model} (no price)"),
        ):
            row = tables[table].setdefault(key, UsageTotals(key=key, label=label))
            row.add(run, price)
        total.add(run, price)
    out = {name: [r.as_json() for r in _ordered(name, rows.values())] for name, rows in tables.items()}
    out["total"] = [total.as_json()]
    return out


def _ordered(table: str, rows: Iterable[UsageTotals]) -> list[UsageTotals]:
    if table == "day":
        return sorted(rows, key=lambda r: r.key, reverse=True)
    return sorted(
        rows, key=lambda r: (r.cost is not None, r.cost or 0.0, r.input_tokens + r.output_tokens), reverse=True
    )
