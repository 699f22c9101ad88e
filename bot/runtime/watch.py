"""`bot serve --watch`: a development server reloads the intents folder when one of its files changes.

Saves come in bursts (an editor writes a temporary file, renames it, touches the folder), so changes
are debounced by watchfiles and one reload follows a burst. A broken edit is reported in the log as
`path:line: message` and the live set stays; the next save tries again. A reload is the same as
`POST /v1/admin/reload`: the edit is live at once and its model retrains in the background.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from bot.errors import BotError

log = logging.getLogger(__name__)

DEBOUNCE_MS = 400  # an editor's save is a burst of events within a few milliseconds


class FolderWatcher:
    """Calls `reload` after each burst of changes below `folder`, on its own thread, until `stop`."""

    def __init__(self, folder: Path, reload: Callable[[], str]) -> None:
        self.folder = folder
        self._reload = reload
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="folder-watch", daemon=True)
        self.reloads = 0
        self.failures = 0

    def start(self) -> FolderWatcher:
        self._thread.start()
        log.warning("watching %s: a saved change is live at once (bot serve --watch)", self.folder)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        from watchfiles import watch

        for changes in watch(self.folder, debounce=DEBOUNCE_MS, stop_event=self._stop, raise_interrupt=False):
            names = sorted({Path(path).name for _change, path in changes})
            self.reload_once(", ".join(names[:5]))

    def reload_once(self, what: str) -> None:
        """One reload after `what` changed: logged, and a broken folder keeps the live set."""
        try:
            version = self._reload()
        except BotError as exc:
            self.failures += 1
            log.warning("not reloaded after a change to %s; the live intents stay: %s", what, exc)
            return
        except Exception:
            self.failures += 1
            log.exception("not reloaded after a change to %s; the live intents stay", what)
            return
        self.reloads += 1
        log.warning("reloaded after a change to %s: intents version %s is live", what, version)
