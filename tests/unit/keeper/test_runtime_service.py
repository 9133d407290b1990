"""keeper.runtime.service: structured log lines and the Prometheus metrics endpoint."""

from __future__ import annotations

import json
import socket
import urllib.request

from keeper.runtime.service import Metrics, log_line


def test_log_line_is_one_flushed_json_line(capsys):
    log_line("skip", kind="bid", account="0xabc", why="simulation reverted: liquidator: healthy")
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    record = json.loads(out)
    assert set(record) == {"ts", "event", "kind", "account", "why"}
    assert (record["event"], record["why"]) == ("skip", "simulation reverted: liquidator: healthy")


def test_metrics_count_and_serve_prometheus():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    m = Metrics(port)
    m.inc("sent_bid", 2)
    m.inc("sent_bid")
    m.set("liquidatable", 7.0)
    assert m.counters["sent_bid"] == 3 and m.gauges["liquidatable"] == 7.0
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "kappa_keeper_sent_bid_total 3.0" in body
    assert "kappa_keeper_liquidatable 7.0" in body
    plain = Metrics(None)
    plain.inc("errors")
    assert plain.counters == {"errors": 1}
