"""Self-training without downtime (issue #26): `bot serve` answers and routes at once on a folder it has
no trained model for, trains it in the background and switches to it by itself; an edit is live at once
and retrains, a newer edit cancels an older training, and a killed training never leaves half a model.

Real `bot serve` processes and real training on a small folder (about a minute each on 2 cores).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.tuning.self_training import PARTIAL, is_trained
from tests.conftest import write
from tests.routing.test_self_calibration import HOME
from tests.servers import SERVE, free_port

pytestmark = pytest.mark.slow

TRAINING_SECONDS = 300  # a bound for the test, far above what the small folder takes


def training_env(folder: Path, cache: Path, database_url: str, **extra: str) -> dict[str, str]:
    """A `bot serve` environment with self-training on (the suite turns it off by default)."""
    return {
        **os.environ,
        "BOT_SELF_TRAIN": "true",
        "BOT_INTENTS_DIR": str(folder),
        "BOT_CACHE_DIR": str(cache),
        "BOT_DATABASE_URL": database_url,
        "BOT_TORCH_THREADS": "1",
        "BOT_LOG_LEVEL": "INFO",
        **extra,
    }


def serve(tmp: Path, cache: Path, folder: Path, log: str) -> tuple[Any, str]:
    """A `bot serve` on `folder` with self-training on; returns (process, URL) as soon as it is spawned."""
    import subprocess

    port = free_port()
    env = training_env(folder, cache, f"sqlite:///{tmp / 'bot.db'}")
    env["BOT_RATE_LIMIT_PER_IP"] = ""  # eight clients on one address, as behind a proxy
    handle = (tmp / log).open("w")
    process = subprocess.Popen(
        [*SERVE, "--port", str(port)], env=env, stdout=handle, stderr=subprocess.STDOUT
    )
    return process, f"http://127.0.0.1:{port}"


def first_ok(url: str, method: str, path: str, deadline: float, **kwargs: Any) -> httpx.Response:
    while True:
        try:
            answer = httpx.request(method, url + path, timeout=5, **kwargs)
            if answer.status_code == 200:
                return answer
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{method} {path} did not answer 200 in time"
        time.sleep(0.2)


def decisions_by_model(url: str) -> Counter[str]:
    """How many logged decisions each model made."""
    found: Counter[str] = Counter()
    offset = 0
    while True:
        page = httpx.get(f"{url}/v1/logs", params={"limit": 200, "offset": offset}, timeout=30).json()
        found.update(item["model_id"] for item in page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return found


def ready(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{url}/readyz", timeout=5).json()
    return body


def wait_for(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:.0f} s"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def stock_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache whose stock-model export is made once for the module (a first start's one-off cost)."""
    from bot.config import Settings
    from bot.routing.engine import Engine

    cache = tmp_path_factory.mktemp("stock-cache")
    Engine(Settings(cache_dir=cache))  # exports the bundled model to ONNX int8 into `cache`
    return cache


def copy_cache(stock: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(stock, to)
    return to


def home_folder(tmp_path: Path, stock: Path) -> tuple[Path, Path]:
    """The small home-automation folder and a cache holding only the stock model's export."""
    folder = tmp_path / "intents"
    write(folder / "home.yaml", HOME)
    return folder, copy_cache(stock, tmp_path / "cache")


def stop(process: Any) -> None:
    process.terminate()
    try:
        process.wait(30)
    except Exception:
        process.kill()


def test_serves_at_once_then_switches_to_the_trained_model_without_failing_a_request(
    tmp_path: Path, stock_cache: Path
) -> None:
    folder, cache = home_folder(tmp_path, stock_cache)
    started = time.monotonic()
    process, url = serve(tmp_path, cache, folder, "server.log")
    try:
        first_ok(url, "GET", "/healthz", started + 10)
        first_ok(url, "POST", "/v1/chat", started + 10, json={"message": "switch the lamp on"})
        state = ready(url)
        interim_model = state["model"]
        assert state["model_kind"] == "interim" and state["training"]["state"] == "running", state

        counts: Counter[int | str] = Counter()
        done = threading.Event()

        def client(n: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                while not done.is_set():
                    try:
                        answer = http.post("/v1/chat", json={"message": f"turn on the light number {n}"})
                        counts[answer.status_code] += 1
                    except httpx.HTTPError as exc:
                        counts[exc.__class__.__name__] += 1
                    time.sleep(0.05)

        clients = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in clients:
            thread.start()
        try:
            wait_for(lambda: ready(url)["model_kind"] == "self-trained", TRAINING_SECONDS, "the switch")
            time.sleep(3)  # requests keep flowing across and after the swap
        finally:
            done.set()
            for thread in clients:
                thread.join(60)
        state = ready(url)
        assert set(counts) == {200}, f"requests failed during the swap: {counts}"
        assert state["model"] != interim_model and state["training"]["state"] == "ready"
        assert state["operating_point"].startswith("self-calibration")
        after = httpx.post(f"{url}/v1/chat", json={"message": "play some jazz"}, timeout=10).json()
        assert after["intent"] == "play_music"
        logged = decisions_by_model(url)
        assert set(logged) == {interim_model, state["model"]}, logged  # every decision names its model
        assert sum(logged.values()) == counts[200] + 2 and counts[200] > 50
        newest = httpx.get(f"{url}/v1/logs", params={"limit": 1}, timeout=10).json()["items"][0]
        assert newest["model_id"] == state["model"]  # once trained, decisions carry the trained id
    finally:
        stop(process)
    assert not list((cache / "models").glob(f"*{PARTIAL}*"))  # nothing half-written left behind


def test_an_edit_is_live_at_once_retrains_and_a_newer_edit_cancels_the_older_training(
    tmp_path: Path, stock_cache: Path
) -> None:
    folder, cache = home_folder(tmp_path, stock_cache)
    process, url = serve(tmp_path, cache, folder, "server.log")
    try:
        first_ok(url, "GET", "/readyz", time.monotonic() + 30)
        first_version = ready(url)["intents_version"]

        # until the child has read the folder: an edit before that makes it refuse (it trains what is on
        # disk, not what it was asked for) and end as failed rather than cancelled
        def reading() -> bool:
            training = ready(url)["training"]
            return bool(training["state"] == "running" and training["phase"] not in ("", "starting"))

        wait_for(reading, 60, "the first training to start")

        write(folder / "home.yaml", HOME.replace("switched on.", "switched on, or made brighter."))
        reloaded = httpx.post(f"{url}/v1/admin/reload", timeout=60)
        assert reloaded.status_code == 200, reloaded.text
        second = ready(url)
        assert second["intents_version"] != first_version and second["model_kind"] == "interim"
        assert second["training"]["intents_version"] == second["intents_version"]  # the old one stopped

        write(folder / "home.yaml", HOME + EXTRA_INTENT)
        assert httpx.post(f"{url}/v1/admin/reload", timeout=60).status_code == 200
        third = ready(url)
        assert third["intents"] == 6 and third["training"]["intents_version"] == third["intents_version"]
        log = (tmp_path / "server.log").read_text()
        assert log.count("cancelling the training of intents") == 2, log[-3000:]
        wait_for(lambda: ready(url)["model_kind"] == "self-trained", TRAINING_SECONDS, "the retrained switch")
        routed = httpx.post(f"{url}/v1/route", json={"messages": ["water the tomato plants"]}, timeout=10)
        answer = routed.json()
        assert (
            answer["model_id"] == ready(url)["model"] and answer["decisions"][0]["intent"] == "water_plants"
        )
    finally:
        stop(process)
    trained = [p for p in (cache / "models").iterdir() if p.is_dir()]
    assert len(trained) == 1 and is_trained(trained[0])  # only the newest version's model was finished


EXTRA_INTENT = """\
  - name: water_plants
    description: The user wants the garden or house plants watered.
    examples: ["water the tomato plants", "turn the sprinklers on for the lawn", "give the ferns some water"]
"""


def test_a_training_killed_midway_leaves_no_model_and_the_next_start_trains_again(
    tmp_path: Path, stock_cache: Path
) -> None:
    folder, cache = home_folder(tmp_path, stock_cache)
    process, url = serve(tmp_path, cache, folder, "first.log")
    try:
        first_ok(url, "GET", "/readyz", time.monotonic() + 30)
        # killed once the model is half-written: trained and saved under its temporary name, no cross-fit yet
        wait_for(lambda: list((cache / "models").glob(f"*{PARTIAL}*")), TRAINING_SECONDS, "a partial model")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    wait_for(
        lambda: not _training_children(cache), 15, "the orphaned training's exit"
    )  # it follows its parent
    models = cache / "models"
    assert not [p for p in models.iterdir() if p.is_dir() and is_trained(p)]
    partials = list(models.glob(f"*{PARTIAL}*"))
    assert partials  # the killed training's work, under its temporary name only

    process, url = serve(tmp_path, cache, folder, "second.log")
    try:
        first_ok(url, "GET", "/readyz", time.monotonic() + 30)
        assert ready(url)["model_kind"] == "interim"  # the half-written model is never used
        wait_for(lambda: ready(url)["model_kind"] == "self-trained", TRAINING_SECONDS, "the retrained switch")
    finally:
        stop(process)
    assert not any(p.exists() for p in partials)  # what the killed training left was cleared away


def _training_children(cache: Path) -> list[int]:
    """Training processes writing into `cache` still alive (`python -m bot.tuning.self_training`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bot.tuning.self_training" in command and str(cache).encode() in command:
            found.append(int(entry.name))
    return found


def test_two_replicas_with_their_own_caches_train_once_and_both_switch(
    tmp_path: Path, stock_cache: Path
) -> None:
    """On one PostgreSQL, replicas that share no disk: the lease makes one train, the other unpacks the
    stored model within a sync interval of it being stored, and both name it with the same id."""
    from tests.api_support import temporary_database
    from tests.servers import bot_servers

    folder = tmp_path / "intents"
    write(folder / "home.yaml", HOME)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with temporary_database("postgresql", tmp_path) as url:
        envs = [
            training_env(
                folder,
                copy_cache(stock_cache, tmp_path / f"cache-{name}"),
                url,
                BOT_LEARNED_SYNC_SECONDS="2",
            )
            for name in ("a", "b")
        ]
        with bot_servers(tmp_path / "a", envs[0]) as (a,), bot_servers(tmp_path / "b", envs[1]) as (b,):
            servers = [a, b]
            switched: dict[str, float] = {}

            def both_switched() -> bool:
                for server in servers:
                    if server.url not in switched and ready(server.url)["model_kind"] == "self-trained":
                        switched[server.url] = time.monotonic()
                return len(switched) == 2

            wait_for(both_switched, TRAINING_SECONDS, "both replicas' switch")
            gap = abs(switched[a.url] - switched[b.url])
            # the other replica looks every 2 s, then unpacks and loads the model (a few seconds)
            assert gap < 2 + 15, f"the second replica switched {gap:.1f} s after the first"
            models = {ready(s.url)["model"] for s in servers}
            logs = [s.log.read_text() for s in servers]
            # what each replica did, without the access and migration lines that bury it (a failure on CI
            # printed only those)
            story = "\n\n".join(
                "\n".join(line for line in log.splitlines() if "bot." in line) for log in logs
            )
            assert any("unpacked from the database" in log for log in logs), story
        trainings = sum(log.count("training the folder's model in the background") for log in logs)
        assert trainings == 1, story
        assert sum("unpacked from the database" in log for log in logs) == 1, story
        assert len(models) == 1  # the same model id on both
