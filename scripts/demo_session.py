"""A scripted session against a running `bot serve` (docs/api.md shows its output).

    bot serve &                      # in another terminal, on the shipped intents
    python scripts/demo_session.py [--url http://127.0.0.1:8000] [--key ADMIN_KEY]

chat -> clarify -> choice -> answer; chat -> handoff -> agent claims and replies -> widget fetches the
reply; analyst lists the logs and reviews one. Every request and the interesting part of its answer
are printed.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import httpx


def main() -> None:
    """Run the session and print it."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", default=None, help="An admin key, when BOT_API_KEYS is set.")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    http = httpx.Client(base_url=args.url, headers=headers, timeout=30)

    def call(method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        response = http.request(method, path, json=body, params=params or None)
        shown = f"{method} {path}" + (f"?{httpx.QueryParams(params)}" if params else "")
        print(f"\n$ {shown} {json.dumps(body) if body else ''}".rstrip())
        print(f"  -> {response.status_code}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def show(data: dict[str, Any], *keys: str) -> None:
        for key in keys:
            print(f"  {key}: {json.dumps(data.get(key), ensure_ascii=False)}")

    print("# 1. a question too short to tell close intents apart: the bot asks which one")
    first = call("POST", "/v1/chat", {"message": "top up"})
    show(first, "conversation_id", "route", "answer", "options")
    if first["route"] != "clarify":  # the shipped intents changed: say so instead of a KeyError
        raise SystemExit(
            f"expected a clarify question for 'top up', got {first['route']}; update this script"
        )
    choice = first["options"][0]["intent"]
    picked = call("POST", "/v1/chat", {"conversation_id": first["conversation_id"], "choice": choice})
    show(picked, "route", "intent", "answer")

    print("\n# 2. the customer asks for a person: a ticket opens, an agent takes it and replies")
    handoff = call("POST", "/v1/chat", {"message": "can I talk to a real person please"})
    show(handoff, "conversation_id", "route", "intent", "ticket_id", "answer")
    ticket, conversation = handoff["ticket_id"], handoff["conversation_id"]
    queue = call("GET", "/v1/handoffs", status="open")
    print(f"  open tickets: {[t['id'] for t in queue['items']]}")
    claimed = call("POST", f"/v1/handoffs/{ticket}/claim", {"agent": "ann"})
    show(claimed, "status", "claimed_by")
    call("POST", f"/v1/handoffs/{ticket}/reply", {"agent": "ann", "text": "Hi, I'm Ann. How can I help?"})
    fetched = call("GET", f"/v1/conversations/{conversation}/messages", after=handoff["message_id"])
    for message in fetched["messages"]:
        print(
            f"  [{message['role']}{' ' + message['author'] if message['author'] else ''}] {message['text'][:70]}"
        )
    resolved = call(
        "POST", f"/v1/handoffs/{ticket}/resolve", {"agent": "ann", "intent": "human_agent", "note": "done"}
    )
    show(resolved, "status", "resolved_intent")

    print("\n# 3. an analyst lists today's handoffs and confirms one decision")
    logs = call("GET", "/v1/logs", route="handoff", limit=5)
    for item in logs["items"]:
        print(
            f"  #{item['id']} {item['route']:8} {item['intent']!s:22} {item['confidence']:.2f}  {item['text'][:40]}"
        )
    reviewed = call(
        "POST", f"/v1/logs/{logs['items'][0]['id']}/review", {"verdict": "correct", "reviewer": "eve"}
    )
    show(reviewed, "decision_id", "verdict", "intent")


if __name__ == "__main__":
    main()
