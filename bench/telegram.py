"""Telegram end to end: messages/s and p50/p99 latency from the fake Bot API's inject to the
bot's ``sendMessage``, with an instant model, for 1 and 100 chats, through python-telegram-bot.

    python bench/telegram.py [options of bench/channels.py]

The measurement itself lives in ``bench/channels.py`` (shared with Slack and Discord); this is
that bench restricted to Telegram. Its last line is one JSON object of figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Import from the repo root, not bench/ (as a script, bench/ is sys.path[0]: bench/telegram.py
# would shadow the python-telegram-bot package).
sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.channels import main

if __name__ == "__main__":
    if not any(a.startswith("--platforms") for a in sys.argv[1:]):
        sys.argv[1:1] = ["--platforms", "telegram"]
    main()
