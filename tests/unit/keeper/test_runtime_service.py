"""keeper.runtime.service: structured log lines, the Prometheus metrics endpoint, and how a
block's failure is classified (a reorg under the step is not an error)."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections import deque
from collections.abc import Callable

import pytest
from web3.exceptions import BlockNotFound

from keeper.runtime.chain import Backoff
from keeper.runtime.health import HealthState
from keeper.runtime.mirror import Mirror
from keeper.runtime.service import ChainChangedError, Keeper, Metrics, log_line
from keeper.runtime.settings import parse_keeper


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


class _Chain:
    """Block hashes by number, changed by the test to play a reorg; `gone` blocks raise."""

    def __init__(self, hashes: dict[int, str]) -> None:
        self.hashes = dict(hashes)
        self.gone: set[int] = set()
        self.on_logs: Callable[[], None] = lambda: None

    def head(self) -> int:
        return max(self.hashes)

    def block_hash(self, number: int) -> str:
        if number in self.gone:
            raise BlockNotFound(f"Block with id: '{number}' not found.")
        return self.hashes[number]

    def logs(self, start: int, end: int) -> list:
        self.on_logs()
        return []

    def chunks(self, start: int, end: int, size: int):
        yield start, end


def _keeper(chain: _Chain, lines: list) -> Keeper:
    """A Keeper without a node: only what on_block's fault handling and the reads touch."""
    k = Keeper.__new__(Keeper)
    k.s = parse_keeper({})
    k.events = chain  # type: ignore[assignment]
    k.mirror = Mirror("0xc", "0xu", 10**6, 10**18)
    k.mirror.last_block, k.mirror.last_block_hash = 10, chain.hashes[10]
    k.metrics = Metrics(None)
    k.lock = threading.Lock()
    k.log = lambda event, **f: lines.append({"event": event, **f})
    k.health = HealthState(roles=["monitor"], started=True, last_block=10)
    k.backoff, k._lag = Backoff(1.0, 30.0), 0
    k._snapshots = deque(maxlen=k.s.reorg_snapshots)
    k._market_key = None
    return k


def test_a_block_that_vanished_under_the_step_is_a_reorg_not_an_error():
    chain = _Chain({10: "0xaa", 11: "0xbb"})
    lines: list = []
    k = _keeper(chain, lines)

    def step(_started: float) -> dict:
        chain.gone.add(10)  # the node reverted to before block 10 during the step
        raise BlockNotFound("Block with id: '10' not found.")

    k._step = step  # type: ignore[method-assign]
    k.on_block(11)
    assert [x["event"] for x in lines] == ["reorg_during_block"]
    assert k.metrics.counters["errors"] == 0 and k.health.last_error is None


def test_a_failing_read_on_an_unchanged_chain_is_an_error():
    chain = _Chain({10: "0xaa", 11: "0xbb"})
    lines: list = []
    k = _keeper(chain, lines)

    def step(_started: float) -> dict:
        raise ConnectionError("connection refused")

    k._step = step  # type: ignore[method-assign]
    k.on_block(11)
    assert [(x["event"], x["error"]) for x in lines] == [("error", "ConnectionError")]
    assert k.metrics.counters["errors"] == 1
    assert k.health.last_error == "ConnectionError: connection refused"


def test_logs_read_across_a_reorg_are_not_recorded_under_the_new_hash():
    chain = _Chain({10: "0xaa", 11: "0xbb", 12: "0xcc"})
    lines: list = []
    k = _keeper(chain, lines)

    def reorg() -> None:
        chain.hashes[12] = "0xdd"  # block 12 replaced while its logs were being read

    chain.on_logs = reorg
    with pytest.raises(ChainChangedError, match="block 12 changed"):
        k._apply_range(11, 12)
    assert (k.mirror.last_block, k.mirror.last_block_hash) == (10, "0xaa")  # untouched
    chain.on_logs = lambda: None
    assert k._apply_range(11, 12) == 0
    assert (k.mirror.last_block, k.mirror.last_block_hash) == (12, "0xdd")


def test_the_monitor_reports_every_account_and_the_gauges():
    """The risk monitor's numbers per block: liquidatable (H_MM < 0), below IM only, open
    auctions, the worst H_MM and the gross |delta|, as one `risk` line and as gauges."""
    from types import SimpleNamespace

    import numpy as np

    lines: list = []
    k = _keeper(_Chain({10: "0xaa"}), lines)
    ev = SimpleNamespace(
        health_mm=np.array([-5.0, 3.0, 10.0, np.nan, 0.0]),
        health_im=np.array([-9.0, -1.0, 4.0, np.nan, -0.5]),
        delta=np.array([1.5, -2.0, 0.25, np.nan, 0.0]),
    )
    k.mirror = SimpleNamespace(  # type: ignore[assignment]
        evaluation=ev, n_accounts=4, auction_start=np.array([100, 0, 0, 0, 0])
    )
    k._rows_evaluated = 4
    out = k._report(block=10, full=True, eval_ms=1.0, started=0.0, n_actions=2)
    # Only the first 4 rows are accounts; the NaN row is one not evaluated yet.
    assert (out["liquidatable"], out["below_im"], out["open_auctions"]) == (1.0, 1.0, 1.0)
    assert out["accounts"] == 4.0 and out["actions"] == 2.0 and out["gross_delta"] == 3.75
    (risk,) = lines
    assert risk["event"] == "risk" and risk["min_health_mm"] == -5.0
    assert k.metrics.gauges["liquidatable"] == 1.0 and k.metrics.gauges["gross_delta"] == 3.75


def test_the_drift_check_repairs_nothing_across_a_reorg():
    """Views read by block number while the node replaced that block belong to another
    branch: the check must neither log drift nor overwrite the mirror."""
    from keeper.runtime.chain import ChainAccount

    chain = _Chain({10: "0xaa"})
    lines: list = []
    k = _keeper(chain, lines)
    k.mirror.row("0x" + "11" * 20)
    k.s = parse_keeper({"drift": {"every_blocks": 1, "sample": 1}})
    k._drift_cursor = 0

    class Reader:
        def read(self, address: str, block: int) -> ChainAccount:
            chain.hashes[10] = "0xbb"  # block 10 replaced while it was read
            return ChainAccount(shares=5, debt=0, underlying=0, words=(), auction_start=0)

    k.accounts = Reader()  # type: ignore[assignment]
    with pytest.raises(ChainChangedError, match="block 10 changed during the drift check"):
        k._drift_check(None, None)
    assert lines == [] and k.mirror.accounts[0].shares == 0
    chain.hashes[10] = k.mirror.last_block_hash = "0xcc"  # an unchanged chain: repaired

    class Steady:
        def read(self, address: str, block: int) -> ChainAccount:
            return ChainAccount(shares=5, debt=0, underlying=0, words=(), auction_start=0)

    k.accounts = Steady()  # type: ignore[assignment]
    k.mirror.evaluate = lambda *a, **kw: None  # type: ignore[method-assign]
    k._drift_check(None, None)
    assert [(x["event"], x["fields"]) for x in lines] == [("drift", ["shares"])]
    assert k.mirror.accounts[0].shares == 5


def test_block_timestamps_are_cached_by_hash_so_a_reorged_number_reads_its_new_block():
    from keeper.runtime.chain import EventReader

    class _Eth:
        def __init__(self) -> None:
            self.blocks = {"0xaa": 1000, "0xbb": 1003}  # two branches' block 7
            self.reads: list[str] = []

        def get_block(self, block_id: str) -> dict:
            self.reads.append(block_id)
            return {"timestamp": self.blocks[block_id]}

    reader = EventReader.__new__(EventReader)
    reader.w3 = type("W3", (), {"eth": _Eth()})()
    reader._timestamps = {}
    assert reader.timestamp("0xaa") == 1000
    assert reader.timestamp("0xbb") == 1003  # the other branch's block at the same height
    assert reader.timestamp("0xaa") == 1000
    assert reader.w3.eth.reads == ["0xaa", "0xbb"]  # each block fetched once


def test_a_reorg_rolls_back_to_the_newest_canonical_checkpoint(tmp_path):
    """Checkpoints at blocks 8, 9 and 10 are kept in memory; a reorg that replaces block 10
    restores block 9's mirror (and replays from there), one that also replaces 9 and 8 finds
    none and rebuilds from the deployment block."""
    chain = _Chain({8: "0x08", 9: "0x09", 10: "0xaa"})
    lines: list = []
    k = _keeper(chain, lines)
    k.checkpoint_file = tmp_path / "keeper.json"
    k._meta = lambda: {"chain_id": 1}  # type: ignore[method-assign]
    rebuilt = Mirror("0xc", "0xu", 10**6, 10**18)
    k._fresh_mirror = lambda: rebuilt  # type: ignore[method-assign]
    for block in (8, 9, 10):
        k.mirror.last_block, k.mirror.last_block_hash = block, chain.hashes[block]
        k.mirror.events_applied = block * 100  # what the mirror held at that block
        k.write_checkpoint()
    k.write_checkpoint()  # block 10 again (a restart's catch-up with nothing new)
    assert [b for b, _, _ in k._snapshots] == [8, 9, 10]
    k._check_reorg()  # nothing changed
    assert k.mirror.last_block == 10 and lines == []

    chain.hashes[10] = "0xee"
    k._check_reorg()
    assert (k.mirror.last_block, k.mirror.last_block_hash, k.mirror.events_applied) == (
        9, "0x09", 900,
    )  # fmt: skip
    assert lines[-1]["event"] == "reorg" and lines[-1]["rolled_back_to"] == 9
    assert [b for b, _, _ in k._snapshots] == [8, 9]  # block 10's is gone with its branch

    chain.hashes.update({8: "0x88", 9: "0x99"})
    k._check_reorg()
    assert k.mirror is rebuilt and lines[-1]["rolled_back_to"] is None
    assert not k._snapshots


def test_no_reorg_snapshots_means_a_rebuild(tmp_path):
    chain = _Chain({9: "0x09", 10: "0xaa"})
    lines: list = []
    k = _keeper(chain, lines)
    k.s = parse_keeper({"reorg_snapshots": 0})
    k._snapshots = deque(maxlen=0)
    k.checkpoint_file = tmp_path / "keeper.json"
    k._meta = lambda: {"chain_id": 1}  # type: ignore[method-assign]
    rebuilt = Mirror("0xc", "0xu", 10**6, 10**18)
    k._fresh_mirror = lambda: rebuilt  # type: ignore[method-assign]
    k.write_checkpoint()
    assert k.checkpoint_file.is_file() and not k._snapshots
    chain.hashes[10] = "0xee"
    k._check_reorg()
    assert k.mirror is rebuilt and lines[-1]["rolled_back_to"] is None
