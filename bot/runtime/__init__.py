"""The life of a serving process (`Runtime`): start-up in order, the background work, and shutdown."""

from bot.runtime.runtime import Runtime, check_folder, routing_engine

__all__ = ["Runtime", "check_folder", "routing_engine"]
