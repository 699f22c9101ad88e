"""Real `bot serve` processes for end-to-end tests: free localhost ports, healthy before use, stopped after."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

SERVE = [sys.executable, "-c", "from bot.cli import main; main()", "serve"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Served:
    """One running server: its base URL and the file its output goes to."""

    url: str
    log: Path


def wait_healthy(server: subprocess.Popen[bytes], served: Served, seconds: float = 120) -> None:
    """Until /readyz answers 200 (the folder is loaded: `bot serve` listens, and /healthz answers, before
    that); fails with the server's output if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    while True:
        assert server.poll() is None, served.log.read_text()
        try:
            if httpx.get(f"{served.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"server did not start within {seconds:.0f} s"
        time.sleep(0.5)


@contextmanager
def bot_servers(
    folder: Path,
    env: Mapping[str, str],
    count: int = 1,
    *,
    args: Sequence[str] = (),
    one_by_one: bool = False,
) -> Iterator[list[Served]]:
    """`count` `bot serve` processes with `env` (and extra `args`), logs in `folder`; all healthy on entry.
    `one_by_one` starts each after the previous is healthy (the second then finds the first's exported
    model in a shared cache instead of waiting on its lock)."""
    with ExitStack() as stack:
        servers: list[subprocess.Popen[bytes]] = []
        served: list[Served] = []
        try:
            for _ in range(count):
                port = free_port()
                one = Served(f"http://127.0.0.1:{port}", folder / f"server{port}.log")
                log = stack.enter_context(one.log.open("w"))
                command = [*SERVE, "--port", str(port), *args]
                servers.append(subprocess.Popen(command, env=dict(env), stdout=log, stderr=subprocess.STDOUT))
                served.append(one)
                if one_by_one:
                    wait_healthy(servers[-1], one)
            for server, one in zip(servers, served, strict=True):
                wait_healthy(server, one)
            yield served
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.kill()
