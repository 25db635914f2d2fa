"""A tool extension: temperature conversion (docs/EXTENSION_GUIDE.md, "Writing a tool").

Put this file in a folder named in ``[extensions] paths``; the hub loads it at start, and
``autohands extensions reload`` (or ``/ext reload``) picks up an edit without a restart.
"""

from __future__ import annotations

from typing import Literal

from agents.tools.base import ToolExtension
from agents.tools.decorator import tool
from hub.extensions import Manifest


@tool(category="units")
async def convert_temperature(value: float, to: Literal["C", "F"]) -> str:
    """Convert a temperature between Celsius and Fahrenheit.

    Args:
        value: the temperature to convert.
        to: the unit wanted: C (from Fahrenheit) or F (from Celsius).
    """
    result = value * 9 / 5 + 32 if to == "F" else (value - 32) * 5 / 9
    return f"{result:.1f} °{to}"


manifest = Manifest(
    id="units",
    name="Unit converter",
    version="1.0.0",
    description="Converts temperatures between Celsius and Fahrenheit.",
    author="AutoHands examples",
    provides=("tool:convert_temperature",),
)

UNITS = ToolExtension(
    manifest=manifest,
    build=lambda config: [convert_temperature],
    categories={"units": "convert temperatures between Celsius and Fahrenheit"},
)

entry_points = {"autohands.tools": {"units": UNITS}}
