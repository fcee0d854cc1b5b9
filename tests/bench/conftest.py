"""Fixtures of the `arun bench` tests: the simulator in a child process (the bench's own
runs call ``asyncio.run``, so the upstream cannot share the test's loop) and its control
endpoints for fault injection."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

REPLY_WORDS = 8


class SimControl:
    def __init__(self, url: str) -> None:
        self.url = url

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def fault(self, times: int, path: str = "/v1/chat/completions", **fault: Any) -> None:
        self._post("/_sim/faults", {"path": path, "times": times, **fault})

    def reset(self) -> None:
        self._post("/_sim/reset")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/_sim/stats", timeout=10) as resp:
            return dict(json.loads(resp.read()))


@pytest.fixture(scope="module")
def sim_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimControl]:
    log = tmp_path_factory.mktemp("sim") / "stderr.log"
    with open(log, "w") as errors, subprocess.Popen(
        [sys.executable, "-m", "arun.testing", "--reply-words", str(REPLY_WORDS)],
        stdout=subprocess.PIPE, stderr=errors, text=True,
    ) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("READY "), (line, log.read_text())
            yield SimControl(line.split()[1])
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
def sim(sim_process: SimControl) -> Iterator[SimControl]:
    sim_process.reset()
    yield sim_process
    sim_process.reset()
