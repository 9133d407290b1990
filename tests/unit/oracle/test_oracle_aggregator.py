"""Unit tests of contracts/oracle/OracleAggregator.vy: price(), source management, ownership.

Every test name contains "oracle" (`pytest -k oracle`). Exact values throughout: the median,
the confidence 1 - ceil(spread * 1e18 / median) / 1e18 floored at 0 with the spread of the
tightest strict majority of the sorted answers, the normalisation answer * 10**(18 - decimals).
Broken sources and settlement: test_oracle_sources_soundness.py, test_oracle_settlement.py.
"""

from __future__ import annotations

from typing import Any

import boa
import pytest

from tests.conftest import deployer, events, load

WAD = 10**18
ZERO = "0x" + "00" * 20
HOUR = 3600


def feed(decimals: int = 8, answer: int | None = None) -> Any:
    """A mock feed whose round 1 answers `answer` (default 2000 units) now."""
    if answer is None:
        answer = 2000 * 10**decimals
    return deployer("contracts/mocks/MockAggregatorV3.vy").deploy(decimals, "ETH / USD", answer)


def aggregator(feeds: list[Any], min_sources: int, heartbeats: list[int] | None = None) -> Any:
    if heartbeats is None:
        heartbeats = [HOUR] * len(feeds)
    return deployer("contracts/oracle/OracleAggregator.vy").deploy(
        [f.address for f in feeds],
        heartbeats,
        min_sources,
        ZERO,
        HOUR,
        WAD,
    )


def confidence(values: list[int], median: int) -> int:
    """The contract's rule: the spread of the tightest floor(m/2) + 1 consecutive sorted
    answers, relative to the median, ratio rounded up."""
    s = sorted(values)
    q = len(s) // 2 + 1
    spread = min(s[i + q - 1] - s[i] for i in range(len(s) - q + 1))
    ratio = -(-spread * WAD // median)
    return max(0, WAD - ratio)


# ----------------------------------------------------------------------------------------------
# price()
# ----------------------------------------------------------------------------------------------


def test_oracle_median_odd() -> None:
    feeds = [feed(8, a * 10**8) for a in (2010, 1990, 2000)]
    agg = aggregator(feeds, 3)
    median, conf, oldest = agg.price()
    assert median == 2000 * WAD
    # The tightest pair around the median spans 10: 1 - 10/2000 = 0.995 exactly.
    assert conf == 995 * WAD // 1000
    assert oldest == boa.env.timestamp


def test_oracle_median_even_is_mean_of_middle_two() -> None:
    answers = [100, 110, 101, 103]
    feeds = [feed(8, a * 10**8) for a in answers]
    agg = aggregator(feeds, 4)
    median, conf, _ = agg.price()
    assert median == 102 * WAD
    # Tightest three of four: 100, 101, 103 (spread 3; 101, 103, 110 spans 9). 3 / 102 =
    # 0.0294...: ratio rounded up, confidence rounded down.
    assert conf == confidence([a * WAD for a in answers], 102 * WAD)
    assert conf == WAD - (3 * WAD + 101) // 102


def test_oracle_median_even_rounds_down() -> None:
    feeds = [feed(18, 1), feed(18, 2)]
    agg = aggregator(feeds, 2)
    median, conf, _ = agg.price()
    assert median == 1  # (1 + 2) // 2
    assert conf == 0  # spread 1 >= median 1


def test_oracle_single_source() -> None:
    agg = aggregator([feed(8, 1234567 * 10**6)], 1)
    assert agg.price()[:2] == (12345670 * WAD // 1000, WAD)


def test_oracle_normalises_decimals_exactly() -> None:
    # 2000.5 units with 0, 6, 8, 18 decimals (0 decimals cannot carry the .5: 2000).
    feeds = [
        feed(6, 2000_500000),
        feed(8, 2000_50000000),
        feed(18, 2000_500000000000000000),
        feed(0, 2000),
    ]
    agg = aggregator(feeds, 4)
    median, conf, _ = agg.price()
    assert median == 2000_500000000000000000
    # The three equal answers are the tightest majority: the 2000 of the 0-decimal feed is
    # outside it.
    assert conf == WAD
    agg.set_min_sources(3)
    agg.remove_source(feeds[2].address)
    median, conf, _ = agg.price()
    assert median == 2000_500000000000000000
    assert conf == confidence([2000 * WAD, median, median], median) == WAD


def test_oracle_confidence_rounds_down() -> None:
    feeds = [feed(18, 3 * WAD), feed(18, 4 * WAD)]
    agg = aggregator(feeds, 2)
    median, conf, _ = agg.price()
    assert median == 7 * WAD // 2
    # ratio 1/3.5 = 0.285714285714285714.28... rounded up, so the confidence rounds down.
    assert conf == 714285714285714285


def test_oracle_confidence_floored_at_zero() -> None:
    # Two pairs far apart: every majority of three spans 9 around a median of 5.5.
    feeds = [feed(8, a * 10**8) for a in (1, 1, 10, 10)]
    median, conf, _ = aggregator(feeds, 4).price()
    assert (median, conf) == (11 * WAD // 2, 0)


def test_oracle_confidence_of_three_never_zero() -> None:
    # With three answers the tightest pair around the median is always narrower than the
    # median itself: 1, 100, 300 -> pair (1, 100), 1 - 99/100.
    feeds = [feed(8, a * 10**8) for a in (1, 100, 300)]
    median, conf, _ = aggregator(feeds, 3).price()
    assert (median, conf) == (100 * WAD, WAD // 100)


def test_oracle_oldest_timestamp_of_used_sources() -> None:
    feeds = [feed() for _ in range(3)]
    agg = aggregator(feeds, 2, [HOUR, HOUR, 60])
    t0 = boa.env.timestamp
    boa.env.time_travel(seconds=100)
    feeds[0].set_answer(2001 * 10**8)
    boa.env.time_travel(seconds=100)
    feeds[1].set_answer(2003 * 10**8)
    # feeds[2] (heartbeat 60 s, updated at t0) is stale now: the oldest used is feeds[0].
    median, _, oldest = agg.price()
    assert median == 2002 * WAD
    assert oldest == t0 + 100


def test_oracle_stale_source_is_skipped() -> None:
    feeds = [feed(8, 2000 * 10**8), feed(8, 2100 * 10**8), feed(8, 5000 * 10**8)]
    agg = aggregator(feeds, 2, [HOUR, HOUR, 60])
    assert agg.price()[0] == 2100 * WAD
    boa.env.time_travel(seconds=61)
    # Only the two hour-heartbeat sources remain: mean of 2000 and 2100.
    assert agg.price()[0] == 2050 * WAD


def test_oracle_heartbeat_boundary_is_fresh() -> None:
    feeds = [feed(8, 2000 * 10**8)]
    agg = aggregator(feeds, 1, [60])
    boa.env.time_travel(seconds=60)
    assert agg.price()[0] == 2000 * WAD  # age == heartbeat: fresh
    boa.env.time_travel(seconds=1)
    with boa.reverts("oracle: too few fresh sources"):
        agg.price()


def test_oracle_too_few_fresh_sources() -> None:
    feeds = [feed() for _ in range(3)]
    agg = aggregator(feeds, 3, [HOUR, HOUR, 60])
    boa.env.time_travel(seconds=61)
    with boa.reverts("oracle: too few fresh sources"):
        agg.price()
    agg.set_min_sources(2)
    assert agg.price()[0] == 2000 * WAD


@pytest.mark.parametrize("answer", [0, -1, -(2**255)])
def test_oracle_non_positive_answer_is_skipped(answer: int) -> None:
    feeds = [feed(8, a * 10**8) for a in (2000, 2100, 2200)]
    agg = aggregator(feeds, 2)
    feeds[1].set_answer(answer)
    assert agg.price()[0] == 2100 * WAD  # the mean of 2000 and 2200
    assert agg.source_status() == [0, 2, 0]
    agg.set_min_sources(3)
    with boa.reverts("oracle: too few fresh sources"):
        agg.price()


def test_oracle_answer_from_the_future_is_skipped() -> None:
    feeds = [feed() for _ in range(3)]
    agg = aggregator(feeds, 2)
    now = boa.env.timestamp
    feeds[2].set_round_data(2, 9000 * 10**8, now, now + 1, 2)
    assert agg.price()[0] == 2000 * WAD
    assert agg.source_status() == [0, 0, 2]


def test_oracle_incomplete_round_is_skipped() -> None:
    feeds = [feed(8, 2000 * 10**8), feed(8, 2010 * 10**8), feed(8, 2020 * 10**8)]
    agg = aggregator(feeds, 2)
    now = boa.env.timestamp
    # answeredInRound < roundId: the round was carried over, not answered.
    feeds[0].set_round_data(5, 2000 * 10**8, now, now, 4)
    assert agg.price()[0] == 2015 * WAD
    assert agg.source_status() == [2, 0, 0]
    # updatedAt == 0: the round never completed.
    feeds[0].set_round_data(5, 2000 * 10**8, now, 0, 5)
    assert agg.price()[0] == 2015 * WAD
    assert agg.source_status() == [2, 0, 0]
    # answeredInRound > roundId is accepted (legacy aggregators did report that).
    feeds[0].set_round_data(5, 2000 * 10**8, now, now, 6)
    assert agg.price()[0] == 2010 * WAD
    assert agg.source_status() == [0, 0, 0]


def test_oracle_answer_too_large_is_skipped() -> None:
    feeds = [feed(8, 10**26), feed(18, 10**36)]
    agg = aggregator(feeds, 1)
    assert agg.price()[0] == 10**36  # exactly at the bound
    assert agg.source_status() == [0, 0]
    feeds[0].set_answer(10**26 + 1)
    assert agg.price()[0] == 10**36
    assert agg.source_status() == [2, 0]
    feeds[0].set_answer(2**255 - 1)
    feeds[1].set_answer(3 * WAD)
    assert agg.price()[0] == 3 * WAD
    assert agg.source_status() == [2, 0]


def test_oracle_malformed_stale_source_reports_malformed() -> None:
    feeds = [feed() for _ in range(3)]
    agg = aggregator(feeds, 2, [HOUR, HOUR, 60])
    boa.env.time_travel(seconds=120)
    feeds[0].set_answer(2000 * 10**8)
    feeds[1].set_answer(2000 * 10**8)
    now = boa.env.timestamp
    feeds[2].set_round_data(1, -5, now - 100, now - 100, 1)
    assert agg.price()[0] == 2000 * WAD
    assert agg.source_status() == [0, 0, 2]
    feeds[2].set_round_data(2, 5 * 10**8, now - 100, now - 100, 2)
    assert agg.source_status() == [0, 0, 1]


def test_oracle_reverting_source_is_skipped() -> None:
    with boa.env.prank(boa.env.generate_address()):  # a fresh address (see test_mocks.py)
        token = load("contracts/mocks/MockERC20.vy", "Token", "TKN", 18)
    feeds = [feed(), feed()]
    agg = aggregator(feeds, 2)
    # The token has decimals() but no latestRoundData: it can be added, and then price()
    # skips it as reverting.
    agg.add_source(token.address, HOUR)
    assert agg.price()[0] == 2000 * WAD
    assert agg.source_status() == [0, 0, 3]
    agg.set_min_sources(3)
    with boa.reverts("oracle: too few fresh sources"):
        agg.price()


def test_oracle_one_manipulated_source_cannot_move_median() -> None:
    honest = [1990, 2000, 2010]
    feeds = [feed(8, a * 10**8) for a in honest] + [feed(8, 10**9 * 10**8)]
    agg = aggregator(feeds, 3)
    median, _, _ = agg.price()
    assert 1990 * WAD <= median <= 2010 * WAD
    assert median == 2005 * WAD
    feeds[3].set_answer(1)
    assert agg.price()[0] == 1995 * WAD


# ----------------------------------------------------------------------------------------------
# Sources and min_sources
# ----------------------------------------------------------------------------------------------


def test_oracle_constructor_state_and_events() -> None:
    feeds = [feed(8), feed(18)]
    agg = aggregator(feeds, 2, [HOUR, 7200])
    assert events(agg) == [
        ("OwnershipTransferred", {"previous_owner": ZERO, "new_owner": boa.env.eoa}),
        ("SourceAdded", {"feed": feeds[0].address, "heartbeat": HOUR, "decimals": 8}),
        ("SourceAdded", {"feed": feeds[1].address, "heartbeat": 7200, "decimals": 18}),
        ("MinSourcesSet", {"old_min_sources": 0, "new_min_sources": 2}),
        ("SequencerFeedSet", {"old_feed": ZERO, "new_feed": ZERO}),
        ("GracePeriodSet", {"old_grace_period": 0, "new_grace_period": HOUR}),
        ("GraceLiquidationBufferSet", {"old_buffer": 0, "new_buffer": WAD}),
        ("SettlementTimeoutSet", {"old_timeout": 0, "new_timeout": HOUR}),
    ]
    assert agg.owner() == boa.env.eoa
    assert agg.pending_owner() == ZERO
    assert agg.min_sources() == 2
    assert agg.source_count() == 2
    assert agg.source(0) == (feeds[0].address, HOUR, 8)
    assert agg.source(1) == (feeds[1].address, 7200, 18)
    assert agg.sequencer_feed() == ZERO
    assert agg.grace_period() == HOUR
    assert agg.grace_liquidation_buffer() == WAD
    assert agg.settlement_timeout() == HOUR
    assert (agg.round_history(0), agg.round_history(1)) == (True, True)


def test_oracle_constructor_reverts() -> None:
    feeds = [feed(), feed()]
    with boa.reverts("oracle: length mismatch"):
        load(
            "contracts/oracle/OracleAggregator.vy",
            [f.address for f in feeds],
            [HOUR],
            1,
            ZERO,
            0,
            0,
        )
    with boa.reverts("oracle: bad min_sources"):
        aggregator(feeds, 3)
    with boa.reverts("oracle: bad min_sources"):
        aggregator(feeds, 0)
    with boa.reverts("oracle: duplicate source"):
        aggregator([feeds[0], feeds[0]], 1)


def test_oracle_add_source() -> None:
    feeds = [feed(8)]
    agg = aggregator(feeds, 1)
    new = feed(6, 2100 * 10**6)
    agg.add_source(new.address, 600)
    assert events(agg) == [("SourceAdded", {"feed": new.address, "heartbeat": 600, "decimals": 6})]
    assert agg.source_count() == 2
    assert agg.source(1) == (new.address, 600, 6)
    assert agg.price()[0] == 2050 * WAD


def test_oracle_add_source_reverts() -> None:
    agg = aggregator([feed()], 1)
    other = boa.env.generate_address()
    with boa.env.prank(other), boa.reverts("ownable: not owner"):
        agg.add_source(feed().address, HOUR)
    with boa.reverts("oracle: zero address"):
        agg.add_source(ZERO, HOUR)
    with boa.reverts("oracle: duplicate source"):
        agg.add_source(agg.source(0)[0], HOUR)
    with boa.reverts("oracle: bad heartbeat"):
        agg.add_source(feed().address, 0)
    with boa.reverts("oracle: bad heartbeat"):
        agg.add_source(feed().address, 2 * 86400 + 1)
    agg.add_source(feed().address, 2 * 86400)  # the bound itself is accepted
    with boa.reverts("oracle: too many decimals"):
        agg.add_source(feed(19, 1).address, HOUR)
    for _ in range(6):
        agg.add_source(feed().address, HOUR)
    assert agg.source_count() == 8
    with boa.reverts("oracle: too many sources"):
        agg.add_source(feed().address, HOUR)


def test_oracle_remove_source() -> None:
    feeds = [feed(8, a * 10**8) for a in (1000, 2000, 3000, 4000)]
    agg = aggregator(feeds, 2)
    agg.remove_source(feeds[1].address)
    assert events(agg) == [("SourceRemoved", {"feed": feeds[1].address})]
    # The last source moved into the removed one's place.
    assert [agg.source(i)[0] for i in range(3)] == [
        feeds[0].address,
        feeds[3].address,
        feeds[2].address,
    ]
    assert agg.price()[0] == 3000 * WAD
    agg.remove_source(feeds[2].address)  # the last one: a plain pop
    assert [agg.source(i)[0] for i in range(2)] == [feeds[0].address, feeds[3].address]
    assert agg.price()[0] == 2500 * WAD


def test_oracle_source_count_and_min_sources_share_a_word() -> None:
    """Count and min_sources live in the first source's word: adding and removing sources
    keeps min_sources, setting min_sources keeps the count, replacing or re-timing the first
    source keeps both (and the source's own fields), and a removed source's slot is reused."""
    feeds = [feed(8, a * 10**8) for a in (1000, 2000, 3000)]
    agg = aggregator(feeds, 2)
    agg.remove_source(feeds[0].address)
    assert (agg.source_count(), agg.min_sources()) == (2, 2)
    assert agg.source(0) == (feeds[2].address, HOUR, 8)
    agg.set_heartbeat(feeds[2].address, 2 * HOUR)
    assert agg.source(0) == (feeds[2].address, 2 * HOUR, 8)
    assert (agg.source_count(), agg.min_sources()) == (2, 2)
    agg.set_heartbeat(feeds[2].address, HOUR)
    newcomer = feed(8, 4000 * 10**8)
    agg.add_source(newcomer.address, HOUR)
    assert (agg.source_count(), agg.min_sources()) == (3, 2)
    assert [agg.source(i)[0] for i in range(3)] == [
        feeds[2].address,
        feeds[1].address,
        newcomer.address,
    ]
    with boa.reverts("oracle: no such source"):
        agg.source(3)
    agg.set_min_sources(3)
    assert (agg.source_count(), agg.min_sources()) == (3, 3)
    assert agg.price()[0] == 3000 * WAD
    for _ in range(5):
        agg.add_source(feed(8, 3000 * 10**8).address, HOUR)
    assert (agg.source_count(), agg.min_sources()) == (8, 3)
    agg.set_min_sources(8)
    assert (agg.source_count(), agg.min_sources()) == (8, 8)


def test_oracle_remove_source_reverts() -> None:
    feeds = [feed(), feed()]
    agg = aggregator(feeds, 2)
    with boa.env.prank(boa.env.generate_address()), boa.reverts("ownable: not owner"):
        agg.remove_source(feeds[0].address)
    with boa.reverts("oracle: unknown source"):
        agg.remove_source(feed().address)
    with boa.reverts("oracle: below min_sources"):
        agg.remove_source(feeds[0].address)


def test_oracle_set_heartbeat() -> None:
    feeds = [feed(8), feed(18)]
    agg = aggregator(feeds, 1)
    agg.set_heartbeat(feeds[1].address, 60)
    assert events(agg) == [
        (
            "SourceHeartbeatSet",
            {"feed": feeds[1].address, "old_heartbeat": HOUR, "new_heartbeat": 60},
        )
    ]
    # Only the heartbeat field changed.
    assert agg.source(1) == (feeds[1].address, 60, 18)
    assert agg.source(0) == (feeds[0].address, HOUR, 8)
    with boa.env.prank(boa.env.generate_address()), boa.reverts("ownable: not owner"):
        agg.set_heartbeat(feeds[0].address, 60)
    with boa.reverts("oracle: unknown source"):
        agg.set_heartbeat(feed().address, 60)
    with boa.reverts("oracle: bad heartbeat"):
        agg.set_heartbeat(feeds[0].address, 0)
    with boa.reverts("oracle: bad heartbeat"):
        agg.set_heartbeat(feeds[0].address, 2 * 86400 + 1)


def test_oracle_set_min_sources() -> None:
    agg = aggregator([feed(), feed(), feed()], 1)
    agg.set_min_sources(3)
    assert events(agg) == [("MinSourcesSet", {"old_min_sources": 1, "new_min_sources": 3})]
    assert agg.min_sources() == 3
    with boa.reverts("oracle: bad min_sources"):
        agg.set_min_sources(0)
    with boa.reverts("oracle: bad min_sources"):
        agg.set_min_sources(4)
    with boa.env.prank(boa.env.generate_address()), boa.reverts("ownable: not owner"):
        agg.set_min_sources(2)


def test_oracle_source_view_reverts_out_of_range() -> None:
    agg = aggregator([feed()], 1)
    with boa.reverts("oracle: no such source"):
        agg.source(1)


# ----------------------------------------------------------------------------------------------
# Ownership
# ----------------------------------------------------------------------------------------------


def test_oracle_ownership_two_step() -> None:
    agg = aggregator([feed()], 1)
    owner = boa.env.eoa
    new = boa.env.generate_address()
    agg.transfer_ownership(new)
    assert events(agg) == [
        ("OwnershipTransferStarted", {"previous_owner": owner, "new_owner": new})
    ]
    assert agg.owner() == owner
    assert agg.pending_owner() == new
    with boa.env.prank(boa.env.generate_address()), boa.reverts("ownable: not pending owner"):
        agg.accept_ownership()
    with boa.env.prank(new):
        agg.accept_ownership()
    assert events(agg) == [("OwnershipTransferred", {"previous_owner": owner, "new_owner": new})]
    assert (agg.owner(), agg.pending_owner()) == (new, ZERO)
    with boa.reverts("ownable: not owner"):
        agg.set_min_sources(1)
    with boa.env.prank(new):
        agg.set_min_sources(1)


def test_oracle_ownership_transfer_can_be_cancelled() -> None:
    agg = aggregator([feed()], 1)
    new = boa.env.generate_address()
    agg.transfer_ownership(new)
    agg.transfer_ownership(ZERO)
    assert agg.pending_owner() == ZERO
    with boa.env.prank(new), boa.reverts("ownable: not pending owner"):
        agg.accept_ownership()
    with boa.env.prank(new), boa.reverts("ownable: not owner"):
        agg.transfer_ownership(new)
