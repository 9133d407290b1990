"""Unit tests of the L2 sequencer guard in contracts/oracle/OracleAggregator.vy.

Every test name contains "sequencer" (`pytest -k sequencer`). The uptime feed is
contracts/mocks/MockSequencerFeed.vy (answer 0 = up, 1 = down, startedAt = last change).
"""

from __future__ import annotations

from typing import Any

import boa

from tests.conftest import deployer, events

WAD = 10**18
ZERO = "0x" + "00" * 20
GRACE = 3600
BUFFER = 500 * WAD
MAX_UINT = 2**256 - 1


def sequencer(down: bool = False) -> Any:
    return deployer("contracts/mocks/MockSequencerFeed.vy").deploy(down)


def guard(sequencer_feed: str) -> Any:
    price_feed = deployer("contracts/mocks/MockAggregatorV3.vy").deploy(
        8, "ETH / USD", 2000 * 10**8
    )
    return deployer("contracts/oracle/OracleAggregator.vy").deploy(
        [price_feed.address], [3600], 1, sequencer_feed, GRACE, BUFFER
    )


def status(agg: Any) -> tuple[bool, int, bool, int]:
    return (
        agg.sequencer_up(),
        agg.seconds_since_up(),
        agg.risk_increase_allowed(),
        agg.liquidation_threshold(),
    )


def test_sequencer_absent_means_always_up() -> None:
    agg = guard(ZERO)
    assert status(agg) == (True, MAX_UINT, True, 0)
    assert agg.grace_period() == GRACE


def test_sequencer_down_blocks_risk() -> None:
    feed = sequencer(down=False)
    agg = guard(feed.address)
    boa.env.time_travel(seconds=GRACE + 1)
    assert status(agg) == (True, GRACE + 1, True, 0)
    feed.set_status(True)
    assert status(agg) == (False, 0, False, -BUFFER)
    boa.env.time_travel(seconds=10 * GRACE)
    assert status(agg) == (False, 0, False, -BUFFER)


def test_sequencer_grace_period_after_recovery() -> None:
    feed = sequencer(down=True)
    agg = guard(feed.address)
    boa.env.time_travel(seconds=100)
    feed.set_status(False)
    assert status(agg) == (True, 0, False, -BUFFER)
    boa.env.time_travel(seconds=GRACE)
    # Exactly grace_period seconds since it came up: still in grace.
    assert status(agg) == (True, GRACE, False, -BUFFER)
    boa.env.time_travel(seconds=1)
    assert status(agg) == (True, GRACE + 1, True, 0)


def test_sequencer_refresh_without_change_keeps_started_at() -> None:
    feed = sequencer(down=False)
    agg = guard(feed.address)
    boa.env.time_travel(seconds=50)
    feed.set_status(False)  # the same status: startedAt stays
    assert agg.seconds_since_up() == 50


def test_sequencer_started_at_zero_counts_as_down() -> None:
    feed = sequencer(down=False)
    agg = guard(feed.address)
    feed.set_round_data(0, 0, 0, 0, 0)
    assert status(agg) == (False, 0, False, -BUFFER)


def test_sequencer_unknown_answer_counts_as_down() -> None:
    feed = sequencer(down=False)
    agg = guard(feed.address)
    now = boa.env.timestamp
    for answer in (2, -1):
        feed.set_round_data(7, answer, now - 2 * GRACE, now, 7)
        assert status(agg) == (False, 0, False, -BUFFER)


def test_sequencer_started_in_future_is_in_grace() -> None:
    feed = sequencer(down=False)
    agg = guard(feed.address)
    now = boa.env.timestamp
    feed.set_round_data(3, 0, now + 60, now, 3)
    assert status(agg) == (True, 0, False, -BUFFER)


def test_sequencer_zero_grace_period() -> None:
    feed = sequencer(down=True)
    agg = guard(feed.address)
    agg.set_grace_period(0)
    feed.set_status(False)
    # Up for 0 seconds is not "past" a zero grace period; one second later it is.
    assert agg.risk_increase_allowed() is False
    boa.env.time_travel(seconds=1)
    assert status(agg) == (True, 1, True, 0)


def test_sequencer_set_feed() -> None:
    agg = guard(ZERO)
    feed = sequencer(down=True)
    agg.set_sequencer_feed(feed.address)
    assert events(agg) == [("SequencerFeedSet", {"old_feed": ZERO, "new_feed": feed.address})]
    assert agg.sequencer_feed() == feed.address
    assert agg.sequencer_up() is False
    agg.set_sequencer_feed(ZERO)
    assert events(agg) == [("SequencerFeedSet", {"old_feed": feed.address, "new_feed": ZERO})]
    assert agg.sequencer_up() is True


def test_sequencer_set_feed_reverts() -> None:
    agg = guard(ZERO)
    price_feed = deployer("contracts/mocks/MockAggregatorV3.vy").deploy(8, "ETH / USD", 1)
    with boa.reverts("oracle: not a sequencer feed"):
        agg.set_sequencer_feed(price_feed.address)
    with boa.env.prank(boa.env.generate_address()), boa.reverts("ownable: not owner"):
        agg.set_sequencer_feed(sequencer().address)
    with boa.reverts("oracle: not a sequencer feed"):
        deployer("contracts/oracle/OracleAggregator.vy").deploy(
            [price_feed.address], [3600], 1, price_feed.address, GRACE, BUFFER
        )


def test_sequencer_set_grace_period() -> None:
    agg = guard(ZERO)
    agg.set_grace_period(86400)
    assert events(agg) == [
        ("GracePeriodSet", {"old_grace_period": GRACE, "new_grace_period": 86400})
    ]
    assert agg.grace_period() == 86400
    with boa.reverts("oracle: grace period too long"):
        agg.set_grace_period(86401)
    with boa.env.prank(boa.env.generate_address()), boa.reverts("ownable: not owner"):
        agg.set_grace_period(60)


def test_sequencer_feed_and_grace_period_share_a_word_without_touching_each_other() -> None:
    """The feed and the grace period are one storage word: each setter keeps the other."""
    feed = sequencer()
    agg = guard(feed.address)
    agg.set_grace_period(86400)
    assert (agg.sequencer_feed(), agg.grace_period()) == (feed.address, 86400)
    other = sequencer(down=True)
    agg.set_sequencer_feed(other.address)
    assert (agg.sequencer_feed(), agg.grace_period()) == (other.address, 86400)
    assert agg.sequencer_up() is False
    agg.set_grace_period(0)
    assert (agg.sequencer_feed(), agg.grace_period()) == (other.address, 0)


def test_sequencer_set_grace_liquidation_buffer() -> None:
    feed = sequencer(down=True)
    agg = guard(feed.address)
    agg.set_grace_liquidation_buffer(10**30)
    assert events(agg) == [
        ("GraceLiquidationBufferSet", {"old_buffer": BUFFER, "new_buffer": 10**30})
    ]
    assert agg.grace_liquidation_buffer() == 10**30
    assert agg.liquidation_threshold() == -(10**30)
    agg.set_grace_liquidation_buffer(0)
    assert agg.liquidation_threshold() == 0
    with boa.reverts("oracle: buffer too large"):
        agg.set_grace_liquidation_buffer(10**30 + 1)
    with boa.env.prank(boa.env.generate_address()), boa.reverts("ownable: not owner"):
        agg.set_grace_liquidation_buffer(1)


def test_sequencer_guard_does_not_block_price() -> None:
    # Liquidations of deeply under-water accounts need a price while the sequencer is down.
    feed = sequencer(down=True)
    agg = guard(feed.address)
    assert agg.risk_increase_allowed() is False
    assert agg.price()[0] == 2000 * WAD
