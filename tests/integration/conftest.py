"""The integration tests' node and child-process helpers: one way to start anvil and to run ape
in a child process (so the test session never holds a node).

`child_env(**extra)` is the environment a child needs (the checkout's anvil and venv on PATH,
the compiler folder, the repository importable); `run_driver(code, *args)` runs Python code in
such a child and returns the JSON it printed on its `RESULT ` line; the `anvil` fixture (or
`start_anvil(*args)` for a node with extra options) is a fresh anvil of the test's own,
stopped after it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment with the checkout's tools first on PATH, the pinned
    compiler's folder, the repository on PYTHONPATH, unbuffered output, and `extra`."""
    env = dict(os.environ)
    env["PATH"] = (
        f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{Path(sys.executable).parent}"
        f"{os.pathsep}{env.get('PATH', '')}"
    )
    env.setdefault("VVM_BINARY_PATH", str(ROOT / ".vvm"))
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def require_anvil() -> None:
    """Fail with the one-line fix when the checkout's anvil is missing."""
    assert shutil.which("anvil", path=child_env()["PATH"]), "anvil missing: run `make setup` first"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def start_anvil(*args: str) -> Iterator[tuple[str, int]]:
    """A fresh anvil on a free port with `args`, up when this yields (url, port), stopped on
    exit."""
    require_anvil()
    port = free_port()
    proc = subprocess.Popen(
        ["anvil", "--port", str(port), "--silent", *args],
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_driver(
    code: str, *args: str, env: dict[str, str] | None = None, timeout: int = 180
) -> dict:
    """Run `code` with `args` in a child Python (`child_env()` unless `env`); it must exit 0
    and print one line `RESULT <json>`, which is returned."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture
def anvil() -> Iterator[tuple[str, int]]:
    """A fresh anvil of the test's own, stopped after the test: (url, port)."""
    with start_anvil() as node:
        yield node
