"""keeper.runtime.chain.Backoff and the shard/rpc settings: the RPC retry policy without a node."""

from __future__ import annotations

import pytest

from keeper.runtime.chain import Backoff
from keeper.runtime.settings import KeeperConfigError, parse_keeper


def test_backoff_doubles_to_the_cap_and_resets_on_success():
    b = Backoff(initial=1.0, maximum=30.0)
    assert b.ready(0.0) and b.success(0.0) is None  # no outage yet
    delays = [b.failure(100.0 + i) for i in range(7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert b.retry_at == 106.0 + 30.0
    assert not b.ready(135.9) and b.ready(136.0)
    assert b.success(140.5) == pytest.approx(40.5)  # down since the first failure at t = 100
    assert (b.failures, b.retry_at, b.down_since) == (0, 0.0, None)
    assert b.failure(200.0) == 1.0  # a new outage starts from the initial delay


def test_shard_and_rpc_settings_are_validated():
    s = parse_keeper({"shard": {"index": 1, "count": 2, "takeover_blocks": 3}})
    assert (s.shard.index, s.shard.count, s.shard.takeover_blocks) == (1, 2, 3)
    assert (s.rpc.backoff_initial_seconds, s.rpc.backoff_max_seconds) == (1.0, 30.0)
    with pytest.raises(KeeperConfigError, match=r"keeper\.shard: index must be below count"):
        parse_keeper({"shard": {"index": 2, "count": 2}})
    with pytest.raises(KeeperConfigError, match=r"keeper\.shard\.takeover_blocks: Input should be"):
        parse_keeper({"shard": {"takeover_blocks": 0}})
