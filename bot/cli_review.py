"""`bot review export` and `bot logs export`: analysts' command-line tools."""

from __future__ import annotations
