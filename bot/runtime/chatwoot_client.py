"""Calls to Chatwoot's application API, off the request path (issue #30 item 3).

The webhook answers Chatwoot at once; what the bot says back (a reply, a private note, opening the
conversation) is queued here and sent by one background thread, in order, so a conversation's note
always lands before it is opened. Each call is retried with exponential backoff on a network error, a
5xx or a 429, and given up on any other 4xx (the request itself is wrong: retrying cannot help). Logs
name the path and status, never the access token.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatwootCall:
    """One POST to Chatwoot: a path under the base URL and its JSON body."""

    path: str
    body: dict[str, Any]


class ChatwootClient:
    """Sends queued calls to Chatwoot with the agent bot's token; `close` stops the thread."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        attempts: int = 4,
        backoff: float = 0.5,
        timeout: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self._queue: queue.Queue[list[ChatwootCall] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="chatwoot-sender", daemon=True)
        self._thread.start()
        self.sent = 0  # calls Chatwoot accepted; `failed` counts those given up
        self.failed = 0

    def submit(self, calls: list[ChatwootCall]) -> None:
        """Queue `calls` to be sent one after the other (returns at once)."""
        if calls:
            self._queue.put(calls)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far was sent or given up (tests, shutdown)."""
        done = threading.Event()
        self._queue.put([ChatwootCall("", {"__done__": done})])
        return done.wait(timeout)

    def close(self, wait: float = 5.0) -> None:
        """Stop the sender after what is queued, waiting at most `wait` seconds (a down Chatwoot must
        not hold a shutdown); what is still queued then is lost, and logged."""
        self._queue.put(None)
        self._thread.join(timeout=wait)
        if self._thread.is_alive():
            log.warning("Chatwoot sender stopped with %d batches of calls unsent", self._queue.qsize())

    def _run(self) -> None:
        while True:
            calls = self._queue.get()
            if calls is None:
                return
            for call in calls:
                marker = call.body.get("__done__")
                if isinstance(marker, threading.Event):
                    marker.set()
                    continue
                if self._send(call):
                    self.sent += 1
                else:
                    self.failed += 1

    def _send(self, call: ChatwootCall) -> bool:
        """POST `call`, retried; True once Chatwoot accepted it."""
        for attempt in range(1, self.attempts + 1):
            status, problem = self._post_once(call)
            if status is not None and 200 <= status < 300:
                return True
            retry = status is None or status >= 500 or status == 429
            log.warning(
                "Chatwoot POST %s failed (attempt %d of %d): %s%s",
                call.path,
                attempt,
                self.attempts,
                problem,
                "" if retry else "; not retried: fix the request or the settings (BOT_CHATWOOT_*)",
            )
            if not retry:
                return False
            if attempt < self.attempts:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        return False

    def _post_once(self, call: ChatwootCall) -> tuple[int | None, str]:
        """(HTTP status or None when no answer came, a description without the token)."""
        request = urllib.request.Request(
            self.base_url + call.path,
            data=json.dumps(call.body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "api_access_token": self._token},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return int(response.status), f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return None, f"no answer from {self.base_url} ({type(exc).__name__}: {reason})"
