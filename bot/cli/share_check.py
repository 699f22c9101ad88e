"""`bot check --data LOGS [--set-share]`: the off-topic share the routed traffic shows, against the one the
operating point assumes, and writing it into the folder (issue #31 item 3)."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.app import err, out
from bot.routing.engine import Engine

FROM_FILE = (
    "the operating point comes from the folder's calibration.yaml, which off_topic_share does not change; "
    "refit it at that share with"
)


def share_lines(engine: Engine, logs: Path) -> tuple[list[str], float | None]:
    """What `bot check --data` prints about the share, and the share to set (None: no estimate)."""
    from bot.insights.off_topic_traffic import file_traffic, report

    state = engine.state
    # the YAML intents, as the engine fitted on them (a server's learned examples are not in this engine,
    # but a cross-fit covers the YAML texts only, so say which they are either way)
    found = report(file_traffic(logs), state, engine.settings, engine.encoder, lambda: engine.base_intents)
    by = "the folder's off_topic_share" if found.configured_by == "folder" else "BOT_OOS_RATE"
    how = {
        "general": "against the folder's own examples and the shipped off-topic messages",
        "sibling": "against the folder's own examples",
    }.get(found.reference or "", "free two-part mixture")
    lines = [f"off-topic share ({found.messages:,} logged decisions of {logs}, {how}): {found.advice} ({by})"]
    if found.other_operating_points:
        lines.append(
            f"  note: {found.other_operating_points:,} of them were routed by another model or confidence map than "
            "this folder's; export logs decided by this folder version for a closer estimate"
        )
    if found.small_talk_share:
        lines.append(
            f"  small talk (greetings, thanks, goodbyes) took {found.small_talk_share:.0%}: counted in scope"
        )
    if found.reviewed and found.reviewed_share is not None:
        lines.append(
            f"  reviewed: {found.reviewed_off_topic} of {found.reviewed} reviewed messages off-topic "
            f"({found.reviewed_share:.0%}, {found.reviewed_low:.0%}-{found.reviewed_high:.0%}); analysts pick what "
            "they review, so this checks the estimate rather than replaces it"
        )
    if found.off and found.suggested is not None and found.refit == "folder":
        lines.append(
            f"  `bot check --data {logs} --set-share` writes off_topic_share: {found.suggested:.2f} into the folder"
        )
    elif found.off and found.suggested is not None:
        lines.append(f"  {FROM_FILE}: `{found.command}`")
    return lines, found.suggested if found.refit == "folder" else None


def check_share(engine: Engine, logs: Path, set_share: bool) -> None:
    """Print the estimate; with `set_share`, write it into the folder (exit 1 when there is none)."""
    from bot.content.off_topic import set_folder_share

    lines, suggestion = share_lines(engine, logs)
    for line in lines:
        out.print(line, markup=False, highlight=False)
    if not set_share:
        return
    if suggestion is None:
        err.print("not written: nothing to write into the folder (see above)", markup=False)
        raise typer.Exit(1)
    path = set_folder_share(engine.intents_dir, suggestion)
    out.print(
        f"wrote off_topic_share: {suggestion:.2f} into {path}; a server refits at it on its next reload "
        "(`bot serve --watch`, POST /v1/admin/reload, or the stats page's button)",
        markup=False,
        highlight=False,
    )
