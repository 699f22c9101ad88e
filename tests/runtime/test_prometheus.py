"""A real Prometheus (Debian's `prometheus` package) scraping a real `bot serve --workers 2` (issue #30 items
4 and 5): its HTTP API answers a query on the chat counter summed over both workers, the example alert
rules load without error, and the server's JSON log lines follow a chat by its request id.

Skipped only where the binaries are absent (.ci/run installs them with `apt-get install prometheus`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.chat.request_context import conversation_ref
from tests.api_support import make_intents
from tests.servers import Served, bot_servers, free_port

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
WIDGET = {"Authorization": "Bearer w-key"}
MESSAGES = ("where is my new card", "I lost my card", "what exchange rate do you use", "hello")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)")
def test_the_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    assert PROMTOOL is not None
    for command in (["check", "rules", RULES.name], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run([PROMTOOL, *command], cwd=RULES.parent, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[Served]:
    """`bot serve --workers 2` with a metrics key and JSON logs, both workers ready."""
    if PROMETHEUS is None:
        pytest.skip("Debian's prometheus package is not installed (apt-get install prometheus; .ci/run does)")
    folder = tmp_path_factory.mktemp("prometheus_bot")
    env = {
        **os.environ,
        "BOT_DATABASE_URL": f"sqlite:///{folder / 'bot.db'}",
        "BOT_CACHE_DIR": str(cache_dir),
        "BOT_API_KEYS": "widget:w-key,metrics:scrape-key",
        "BOT_LOG_FORMAT": "json",
        "BOT_SELF_TRAIN": "false",  # no training child: the folder routes with the stock model
        "HF_HUB_OFFLINE": "1",
    }
    args = ["--intents", str(make_intents(folder / "intents")), "--workers", "2"]
    with bot_servers(folder, env, args=args) as (one,):
        yield one


@contextmanager
def prometheus(folder: Path, target: str) -> Iterator[str]:
    """Prometheus scraping `target` every second with the metrics key and the example rules; its URL."""
    assert PROMETHEUS is not None
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "bot",
                "authorization": {"credentials": "scrape-key"},
                "static_configs": [{"targets": [target.removeprefix("http://")]}],
            }
        ],
    }
    (folder / "prometheus.yml").write_text(json.dumps(config))  # YAML reads JSON
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        PROMETHEUS,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address={url.removeprefix('http://')}",
    ]
    with (folder / "prometheus.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            until(lambda: process.poll() is None and ok(f"{url}/-/ready"), "Prometheus ready", folder)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=20)


def ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def until(check: Any, what: str, folder: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        logs = "\n".join(p.read_text()[-3000:] for p in folder.glob("*.log"))
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s\n{logs}"
        time.sleep(0.5)


def query(url: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def scalar(url: str, promql: str) -> float | None:
    result = query(url, promql)
    return float(result[0]["value"][1]) if result else None


def test_a_real_prometheus_reads_the_chat_counter_of_both_workers_and_loads_the_rules(
    served: Served, tmp_path: Path
) -> None:
    with prometheus(tmp_path, served.url) as api:
        # each worker's state gauges carry its pid: both are up and ready before any chat
        until(lambda: scalar(api, 'count(bot_ready{job="bot"} == 1)') == 2, "both workers ready", tmp_path)
        for message in MESSAGES:
            reply = httpx.post(f"{served.url}/v1/chat", json={"message": message}, headers=WIDGET, timeout=30)
            assert reply.status_code == 200, reply.text
        # the counter summed over both workers' files, whichever worker answered the scrape
        total = 'sum(bot_chat_turns_total{job="bot"})'
        until(lambda: scalar(api, total) == len(MESSAGES), f"{total} == {len(MESSAGES)}", tmp_path)
        assert scalar(api, 'sum(bot_http_requests_total{handler="/v1/chat", status="200"})') == len(MESSAGES)
        assert scalar(api, 'count(bot_live_info{job="bot"} == 1)') == 2
        (target,) = httpx.get(f"{api}/api/v1/targets").json()["data"]["activeTargets"]
        assert target["health"] == "up", target
        groups = httpx.get(f"{api}/api/v1/rules").json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert {rule["name"] for rule in rules} >= {"BotSpoolNotEmpty", "BotHandoffRateJump", "BotNotReady"}
        until(lambda: all_evaluated(api), "every rule evaluated once", tmp_path)
        alerts = httpx.get(f"{api}/api/v1/alerts").json()["data"]["alerts"]
        assert [a for a in alerts if a["state"] == "firing"] == []


def all_evaluated(api: str) -> bool:
    groups = httpx.get(f"{api}/api/v1/rules").json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert all(rule.get("lastError", "") == "" for rule in rules), rules
    return all(rule["health"] == "ok" for rule in rules)


def test_json_log_lines_follow_a_chat_by_its_request_id(served: Served) -> None:
    reply = httpx.post(
        f"{served.url}/v1/chat",
        json={"message": "where is my new card"},
        headers={**WIDGET, "X-Request-Id": "complaint-42"},
        timeout=30,
    )
    assert reply.status_code == 200 and reply.headers["x-request-id"] == "complaint-42"
    answer = reply.json()
    time.sleep(0.5)  # the access line reaches the file
    lines = [line for line in served.log.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(entries) >= len(lines) - 2, lines  # at most a native library's line is not ours
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    (access,) = [e for e in entries if e.get("request_id") == "complaint-42"]
    assert access["logger"] == "uvicorn.access" and (access["method"], access["path"]) == ("POST", "/v1/chat")
    assert (access["status"], access["route"], access["decision_id"]) == (
        200,
        "answer",
        answer["decision_id"],
    )
    assert access["conversation"] == conversation_ref(answer["conversation_id"])
    started = [e for e in entries if e["logger"] == "uvicorn.error" and "Started server" in e["message"]]
    assert len(started) == 2  # uvicorn's own lines are JSON too, in both workers
    text = served.log.read_text()
    assert answer["conversation_id"] not in text and "new card" not in text
