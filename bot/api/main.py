"""ASGI entry point for process managers: `uvicorn bot.api.main:app --workers N` (settings from BOT_*)."""

from bot.api import create_app

app = create_app()
