"""A small shop folder (tests/content/shop: 8 intents, no small talk, no tone.yaml) and one engine on it per
session, shared by the small-talk and tone tests (#27 items 2 and 5)."""

from __future__ import annotations

import functools
from pathlib import Path

from bot.config import Settings
from bot.routing.encoders import Encoder
from bot.routing.engine import Engine

SHOP = Path(__file__).resolve().parent / "content" / "shop"


@functools.cache
def shop_engine(encoder: Encoder, cache_dir: Path) -> Engine:
    """An engine on the shop folder with the session's encoder and embedding cache, loaded once."""
    engine = Engine(Settings(intents_dir=SHOP, cache_dir=cache_dir), encoder=encoder)
    engine.load()
    return engine
