"""The keeper's health endpoint: `GET /health` answers one JSON object (the `health:` key of
the network YAML: host, port, max_lag_blocks).

    {"status": "ok" | "degraded" | "starting", "reasons": [...], "last_block": 123,
     "head": 124, "lag_blocks": 0, "seconds_since_progress": 1.2, "roles": [...], ...}

HTTP 200 when ok, 503 otherwise, so that a load balancer or an orchestrator's probe can use
the status code alone. Degraded means any of: the node does not answer, the bot is more than
`max_lag_blocks` behind `head - confirmations`, or its last block failed (the `error` log line
says why). `starting` until the backfill is done. The head is read from the node when the
endpoint is asked (a JSON-RPC `eth_blockNumber`, 2 s timeout), not from the bot's last step,
so a bot whose block subscription stalled shows its lag.

`health_report` is pure; `serve` runs a ThreadingHTTPServer in a daemon thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class HealthState:
    """What the bot records for its health (written under the keeper's lock)."""

    roles: list[str]
    confirmations: int = 0
    started: bool = False
    last_block: int = -1
    last_progress: float = 0.0  # wall time of the last block processed
    last_error: str | None = None  # the last block's failure, None once a block succeeds
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def health_report(
    state: HealthState, head: int | None, now: float, max_lag_blocks: int
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for the state, the node's head (None: unreachable) and wall time."""
    reasons: list[str] = []
    lag: int | None = None
    if head is None:
        reasons.append("node unreachable")
    elif state.last_block >= 0:
        lag = max(head - state.confirmations - state.last_block, 0)
        if lag > max_lag_blocks:
            reasons.append(f"{lag} blocks behind (max {max_lag_blocks})")
    if state.last_error is not None:
        reasons.append(f"last block failed: {state.last_error}")
    status = "starting" if not state.started else "degraded" if reasons else "ok"
    body = {
        "status": status,
        "reasons": reasons,
        "last_block": state.last_block,
        "head": head,
        "lag_blocks": lag,
        "seconds_since_progress": round(now - state.last_progress, 3)
        if state.last_progress
        else None,
        "roles": list(state.roles),
        "errors": state.errors,
        **state.extra,
    }
    return (200 if status == "ok" else 503), body


def serve(
    host: str, port: int, report: Callable[[], tuple[int, dict[str, Any]]]
) -> ThreadingHTTPServer:
    """Serve `report()` at GET /health (404 elsewhere) from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body: dict[str, Any]
            if self.path.split("?")[0] != "/health":
                code, body = 404, {"error": "not found; GET /health"}
            else:
                try:
                    code, body = report()
                except Exception as exc:  # the endpoint must answer even when a read fails
                    code, body = 503, {"status": "degraded", "reasons": [repr(exc)[:200]]}
            data = (json.dumps(body, default=str) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return  # stdout carries the bot's JSON lines only

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="keeper-health", daemon=True).start()
    return server


def rpc_head(uri: str, timeout: float = 2.0) -> int | None:
    """`eth_blockNumber` of an HTTP JSON-RPC node, None when it does not answer."""
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})
    req = urllib.request.Request(uri, body.encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(json.loads(resp.read())["result"], 16)
    except (OSError, ValueError, KeyError, TypeError):
        return None
