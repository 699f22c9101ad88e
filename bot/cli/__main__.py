"""`python -m bot.cli` runs the `bot` command (the load test starts servers this way)."""

from bot.cli import main

main()
