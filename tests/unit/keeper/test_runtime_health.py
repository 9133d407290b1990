"""The keeper's health endpoint (keeper.runtime.health): its verdicts, and the HTTP server."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from keeper.runtime.health import HealthState, health_report, rpc_head, serve
from keeper.runtime.settings import KeeperConfigError, parse_keeper


def _state(**kw) -> HealthState:
    base = {"roles": ["monitor", "liquidator"], "started": True, "last_block": 100}
    return HealthState(**{**base, **kw})


def test_ok_within_the_lag_and_after_a_good_block():
    code, body = health_report(_state(last_progress=10.0), head=103, now=12.5, max_lag_blocks=3)
    assert code == 200
    assert body["status"] == "ok" and body["reasons"] == []
    assert (body["last_block"], body["head"], body["lag_blocks"]) == (100, 103, 3)
    assert body["seconds_since_progress"] == 2.5
    assert body["roles"] == ["monitor", "liquidator"]


def test_degraded_when_behind_failing_or_without_a_node():
    code, body = health_report(_state(), head=104, now=0, max_lag_blocks=3)
    assert (code, body["status"], body["reasons"]) == (503, "degraded", ["4 blocks behind (max 3)"])
    code, body = health_report(_state(last_error="RPCError: x"), head=100, now=0, max_lag_blocks=3)
    assert (code, body["reasons"]) == (503, ["last block failed: RPCError: x"])
    code, body = health_report(_state(), head=None, now=0, max_lag_blocks=3)
    assert (code, body["reasons"], body["lag_blocks"]) == (503, ["node unreachable"], None)


def test_confirmations_count_against_the_head_and_starting_is_not_ok():
    code, body = health_report(_state(confirmations=3), head=106, now=0, max_lag_blocks=3)
    assert (code, body["lag_blocks"]) == (200, 3)
    code, body = health_report(
        _state(started=False, last_block=-1), head=5, now=0, max_lag_blocks=3
    )
    assert (code, body["status"], body["lag_blocks"]) == (503, "starting", None)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_server_answers_json_with_the_status_code():
    port = _port()
    answers = iter([(200, {"status": "ok"}), (503, {"status": "degraded"})])
    server = serve("127.0.0.1", port, lambda: next(answers))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            assert json.loads(resp.read()) == {"status": "ok"}
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        assert err.value.code == 503 and json.loads(err.value.read()) == {"status": "degraded"}
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert err.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_a_failing_report_still_answers():
    port = _port()

    def broken() -> tuple[int, dict]:
        raise RuntimeError("boom")

    server = serve("127.0.0.1", port, broken)
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        body = json.loads(err.value.read())
        assert err.value.code == 503 and body["status"] == "degraded"
        assert "boom" in body["reasons"][0]
    finally:
        server.shutdown()
        server.server_close()


def test_rpc_head_is_none_without_a_node():
    assert rpc_head(f"http://127.0.0.1:{_port()}", timeout=0.5) is None


def test_health_settings_are_validated():
    assert parse_keeper({}).health is None
    s = parse_keeper({"health": {"port": 8090}})
    assert s.health is not None and (s.health.host, s.health.max_lag_blocks) == ("127.0.0.1", 3)
    with pytest.raises(KeeperConfigError, match=r"keeper\.health\.port: Field required"):
        parse_keeper({"health": {}}, "x.yaml")
    with pytest.raises(KeeperConfigError, match=r"keeper\.health\.colour: Extra inputs"):
        parse_keeper({"health": {"port": 1, "colour": 1}}, "x.yaml")
