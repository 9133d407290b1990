"""The keeper bot as a child process of the crash demo (`silverback run keeper.runtime.bot:bot`).

`KeeperBot` writes the bot's settings (the network YAML extended with a fresh checkpoint, the
health endpoint, the Prometheus port and the vol feeder's file source), starts the bot against
the demo's node (APE_FOUNDRY_HOST: ape attaches instead of starting a node), waits on its
health endpoint, scrapes its metrics and reads its JSON log lines. Nothing here decides
anything: the bot does the keeping.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kappa_ops.config import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a keeper bot's log file (other lines, and a last line still being
    written, are skipped); [] while the file does not exist."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


class KeeperBotError(RuntimeError):
    """The bot did not start or stopped answering; the message is one line."""


class KeeperBot:
    def __init__(
        self,
        node_uri: str,
        records_dir: Path,
        workdir: Path,
        vol_source: Path,
        account: str = "TEST::3",
        network: str = "base:local:foundry",
        base_config: Path = ROOT / "deploy" / "networks" / "base-local.yaml",
        perp_funding_usd: float = 500.0,
    ) -> None:
        self.node_uri = node_uri
        self.records_dir = Path(records_dir)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "bot.log"
        self.health_port, self.metrics_port = free_port(), free_port()
        self.config = self.workdir / "keeper.yaml"
        checkpoint = self.workdir / "checkpoint.json"
        checkpoint.unlink(missing_ok=True)  # a fresh chain: nothing to resume
        self.config.write_text(
            f"extends: {base_config}\n"
            "keeper:\n"
            f"  checkpoint: {checkpoint}\n"
            f"  metrics_port: {self.metrics_port}\n"
            f"  health: {{port: {self.health_port}, max_lag_blocks: 3}}\n"
            # A crash block can call for dozens of auction starts and bids at once.
            "  tx: {max_pending: 64}\n"
            # settle_perp once an account's unsettled funding reaches this much (USD).
            f"  settlement: {{max_accounts_per_block: 16, perp_funding_usd: {perp_funding_usd}}}\n"
            "  roles: {monitor: true, monitor_greeks: true, liquidator: true, settler: true,\n"
            "          hedger: true, vol_feeder: true}\n"
            "  vol_feed:\n"
            f"    source: {{kind: file, path: {Path(vol_source).resolve()}}}\n"
            "    deadband: 0.0005\n"
            "    refresh_seconds: 3600\n"
            "    max_source_age_seconds: 3600\n"
        )
        self.cmd = [
            str(Path(sys.executable).parent / "silverback"),
            "run",
            "keeper.runtime.bot:bot",
            "--network",
            network,
            "--account",
            account,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> dict[str, Any]:
        """Start the bot and wait until it has backfilled (its health leaves `starting`)."""
        env = {
            **os.environ,
            "APE_FOUNDRY_HOST": self.node_uri,
            "KAPPA_KEEPER_CONFIG": str(self.config),
            "KAPPA_RECORDS_DIR": str(self.records_dir),
            "PYTHONUNBUFFERED": "1",
        }
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                self.cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text()[-800:].strip().splitlines()
                raise KeeperBotError(
                    f"the keeper bot exited ({self.proc.returncode}): "
                    + (tail[-1] if tail else "no output")
                    + f" (log {self.log_path})"
                )
            h = self.health()
            if h is not None and h.get("status") != "starting":
                return h
            time.sleep(0.2)
        raise KeeperBotError(f"the keeper bot did not start in {timeout:.0f} s ({self.log_path})")

    def health(self) -> dict[str, Any] | None:
        """GET /health (its JSON whatever the status), None while nothing answers."""
        url = f"http://127.0.0.1:{self.health_port}/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return dict(json.loads(resp.read()))
        except urllib.error.HTTPError as exc:  # 503: degraded or starting, still JSON
            return dict(json.loads(exc.read()))
        except OSError:
            return None

    def wait_processed(self, block: int, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the bot has processed `block` (its actions for it are sent by then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            h = self.health()
            if h is not None and int(h.get("last_block", -1)) >= block:
                return h
            if self.proc is not None and self.proc.poll() is not None:
                raise KeeperBotError(f"the keeper bot exited ({self.proc.returncode})")
            time.sleep(0.01)
        raise KeeperBotError(f"the keeper bot did not process block {block} in {timeout:.0f} s")

    def metrics(self) -> dict[str, float]:
        """The bot's Prometheus metrics (`kappa_keeper_*`, counters without `_total`)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if not line.startswith("kappa_keeper_"):
                continue
            name, _, value = line.rpartition(" ")
            if name.endswith("_created"):
                continue
            key = name.removeprefix("kappa_keeper_").removesuffix("_total")
            out[key] = float(value)
        return dict(sorted(out.items()))

    def lines(self) -> list[dict[str, Any]]:
        """The bot's JSON log lines so far."""
        return log_lines(self.log_path)

    def stop(self) -> int | None:
        """SIGINT (the bot writes its checkpoint and logs `shutdown`), then kill after 30 s."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)
