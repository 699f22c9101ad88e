"""The drafted-intents review page `bot bootstrap` writes beside its drafts (DIR/review.html).

One self-contained file, opened from disk: the drafts are embedded as JSON (`<`, `>` and `&` escaped, so
customer text cannot end the script element), the styles and script inline, and its Content-Security-Policy
lets nothing load or leave. A person decides each draft there (accept, rename, merge, drop) and the page
makes the reviewed drafts.yaml; nothing is served or changed until that file is saved into the folder. The page's files live in bot/web/bootstrap/ like the other pages'.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

WEB = Path(__file__).resolve().parent.parent / "web"
PAGE_FILE = "review.html"


def _inline(text: str, closing: str) -> Markup:
    """`text` (the page's own css or js) to place inside a <style> or <script> element: its closing tag,
    in any letter case (HTML ends the element on `</SCRIPT` too), cannot occur in it."""
    return Markup(re.sub(f"</({closing})", r"<\\/\1", text, flags=re.IGNORECASE))


def _json(value: object) -> Markup:
    """`value` as JSON to place inside a <script> element. Customer text is in it, so every `<`, `>` and
    `&` is written as a \\u escape: no tag or comment can open or close there, and JSON reads it back."""
    text = json.dumps(value, ensure_ascii=False)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def render(summary: dict[str, object], folder: Path) -> str:
    """The page for `summary` (drafts.json's content), telling the reviewer to save into `folder`."""
    environment = Environment(
        loader=FileSystemLoader(WEB / "bootstrap"), autoescape=select_autoescape(["html"])
    )
    css = (WEB / "review" / "review.css").read_text(encoding="utf-8") + (
        WEB / "bootstrap" / "bootstrap.css"
    ).read_text(encoding="utf-8")
    drafts = summary["drafts"]
    assert isinstance(drafts, list)
    messages = int(str(summary["messages"]))
    unassigned = int(str(summary["unassigned"]))
    covered = 1 - unassigned / messages if messages else 0.0
    return environment.get_template(PAGE_FILE).render(
        css=_inline(css, "style"),
        js=_inline((WEB / "bootstrap" / "review.js").read_text(encoding="utf-8"), "script"),
        data=_json(summary),
        source=summary["source"],
        folder=str(folder),
        summary_line=(
            f"{len(drafts)} drafts covering {covered:.0%} of {messages:,} questions; "
            f"{summary['knowledge_entries']} knowledge entries; {summary['skipped']} records skipped"
        ),
    )
