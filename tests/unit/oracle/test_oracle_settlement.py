"""OracleAggregator.settlement_price and MarginEngine.settle_expiry: the settlement price is
fixed by the sources' first rounds at or after the expiry, not by the moment of the call.

Issue #20, finding 4: a source that withheld its post-expiry rounds made the honest
settle_expiry revert, and 40 minutes later its owner settled at 3,300 instead of 3,000. Now,
before the settlement timeout a missing source makes settlement revert, and at any time the
price is the median of the first post-expiry rounds (3,000).

Every revert path of settlement_price has a test here with its reason; hints come from
keeper/settlement.py through tests/deployment.settlement_hints.
"""

from __future__ import annotations

from typing import Any

import boa
import pytest

from tests import deployment
from tests import protocol as P  # noqa: N812
from tests.conftest import deployer, events

WAD = 10**18
ZERO = "0x" + "00" * 20
HOUR = 3600
PHASE = 1 << 64


pytestmark = pytest.mark.usefixtures("isolate")


def feed(answer: float = 3000, decimals: int = 8) -> Any:
    return deployer("contracts/mocks/MockAggregatorV3.vy").deploy(
        decimals, "ETH / USD", round(answer * 10**decimals)
    )


def aggregator(feeds: list[Any], min_sources: int) -> Any:
    return deployer("contracts/oracle/OracleAggregator.vy").deploy(
        [f.address for f in feeds], [HOUR] * len(feeds), min_sources, ZERO, HOUR, WAD
    )


def publish(f: Any, answer: float) -> None:
    f.set_answer(round(answer * 10 ** f.decimals()))


def hints(agg: Any, feeds: list[Any], expiry: int) -> list[int]:
    return deployment.settlement_hints(agg, feeds, expiry)


def at(t: int) -> None:
    boa.env.time_travel(seconds=t - boa.env.timestamp)


@pytest.fixture
def setup():
    """Three feeds and an aggregator needing two; the expiry is ten minutes ahead."""
    feeds = [feed(2990), feed(3000), feed(3010)]
    agg = aggregator(feeds, 2)
    return agg, feeds, boa.env.timestamp + 600


# ----------------------------------------------------------------------------------------------
# The rule
# ----------------------------------------------------------------------------------------------


def test_oracle_settlement_is_the_median_of_the_first_rounds_after_expiry(setup):
    agg, feeds, expiry = setup
    at(expiry - 1)
    publish(feeds[0], 2000)  # before the expiry: never used
    at(expiry)
    publish(feeds[0], 3001)  # updated exactly at the expiry: the first round
    at(expiry + 30)
    publish(feeds[1], 3004)
    publish(feeds[2], 3100)
    h = hints(agg, feeds, expiry)
    assert h == [3, 2, 2]
    assert agg.settlement_price(expiry, h) == 3004 * WAD
    # Later rounds change nothing, for any caller at any later time.
    at(expiry + 600)
    for f in feeds:
        publish(f, 5000)
    h_later = hints(agg, feeds, expiry)
    assert h_later == h
    with boa.env.prank(boa.env.generate_address("anyone")):
        assert agg.settlement_price(expiry, h) == 3004 * WAD
    at(expiry + 30 * 86400)
    assert agg.settlement_price(expiry, h) == 3004 * WAD


def test_oracle_settlement_reverts_before_expiry(setup):
    agg, _, expiry = setup
    at(expiry - 1)
    with boa.reverts("oracle: not expired"):
        agg.settlement_price(expiry, [0, 0, 0])


def test_oracle_settlement_needs_one_hint_per_source(setup):
    agg, feeds, expiry = setup
    at(expiry + 1)
    for f in feeds:
        publish(f, 3000)
    with boa.reverts("oracle: one hint per source"):
        agg.settlement_price(expiry, [2, 2])
    with boa.reverts("oracle: one hint per source"):
        agg.settlement_price(expiry, [2, 2, 2, 2])


def test_oracle_settlement_rejects_every_wrong_hint(setup):
    agg, feeds, expiry = setup
    at(expiry + 10)
    for f in feeds:
        publish(f, 3000)  # round 2: the first after the expiry
    at(expiry + 20)
    for f in feeds:
        publish(f, 3300)  # round 3
    assert agg.settlement_price(expiry, [2, 2, 2]) == 3000 * WAD
    for bad in (
        3,  # a later round: its predecessor is already after the expiry
        1,  # a round before the expiry
        0,  # no hint although the source has a round after the expiry
        4,  # beyond the latest round
        PHASE | 2,  # another phase
    ):
        with boa.reverts("oracle: bad settlement hint"):
            agg.settlement_price(expiry, [2, bad, 2])


def test_oracle_settlement_rejects_a_hint_whose_predecessor_is_missing(setup):
    agg, feeds, expiry = setup
    at(expiry + 10)
    now = boa.env.timestamp
    feeds[1].set_round_data(7, 3000 * 10**8, now, now, 7)  # a gap: rounds 2..6 never existed
    for f in (feeds[0], feeds[2]):
        publish(f, 3000)
    with boa.reverts("oracle: bad settlement hint"):
        agg.settlement_price(expiry, [2, 7, 2])


def test_oracle_settlement_waits_for_a_missing_source_until_the_timeout(setup):
    agg, feeds, expiry = setup
    at(expiry + 10)
    publish(feeds[0], 3000)
    publish(feeds[1], 3002)
    # feeds[2] has not published since the expiry: it may still, within the timeout.
    with boa.reverts("oracle: settlement source pending"):
        agg.settlement_price(expiry, hints(agg, feeds, expiry))
    at(expiry + HOUR)  # the deadline itself is still within the timeout
    with boa.reverts("oracle: settlement source pending"):
        agg.settlement_price(expiry, hints(agg, feeds, expiry))
    at(expiry + HOUR + 1)
    assert agg.settlement_price(expiry, hints(agg, feeds, expiry)) == 3001 * WAD
    # Publishing now is too late: the round is dated after the deadline.
    publish(feeds[2], 9000)
    assert agg.settlement_price(expiry, hints(agg, feeds, expiry)) == 3001 * WAD


def test_oracle_settlement_too_few_sources_after_the_timeout(setup):
    agg, feeds, expiry = setup
    at(expiry + 10)
    publish(feeds[0], 3000)
    at(expiry + HOUR + 1)
    with boa.reverts("oracle: too few settlement sources"):
        agg.settlement_price(expiry, hints(agg, feeds, expiry))


def test_oracle_settlement_leaves_out_a_malformed_first_round(setup):
    agg, feeds, expiry = setup
    at(expiry + 10)
    publish(feeds[0], 3000)
    publish(feeds[1], 3002)
    feeds[2].set_answer(0)  # its first round after the expiry is malformed: fixed for good
    at(expiry + 20)
    publish(feeds[2], 9000)
    assert agg.settlement_price(expiry, hints(agg, feeds, expiry)) == 3001 * WAD


def test_oracle_settlement_broken_source_counts_as_missing(setup):
    agg, feeds, expiry = setup
    at(expiry + 10)
    publish(feeds[0], 3000)
    publish(feeds[1], 3002)
    now = boa.env.timestamp
    feeds[2].set_round_data(2, 3000 * 10**8, now, now + 5, 2)  # latest round from the future
    with boa.reverts("oracle: settlement source pending"):
        agg.settlement_price(expiry, hints(agg, feeds, expiry))
    at(expiry + HOUR + 1)
    feeds[2].set_answer(-1)  # broken now: left out after the deadline
    assert agg.settlement_price(expiry, [2, 2, 3]) == 3001 * WAD


def test_oracle_settlement_future_dated_first_round_is_pending(setup):
    agg, feeds, expiry = setup
    at(expiry + 10)
    publish(feeds[0], 3000)
    publish(feeds[1], 3002)
    now = boa.env.timestamp
    feeds[2].set_round_data(2, 3100 * 10**8, now, now + 100, 2)
    at(expiry + 20)
    publish(feeds[2], 3200)  # round 3: latest and sound, but round 2 is dated ahead
    with boa.reverts("oracle: settlement source pending"):
        agg.settlement_price(expiry, [2, 2, 2])
    at(now + 100)
    assert agg.settlement_price(expiry, [2, 2, 2]) == 3002 * WAD  # median of 3000, 3002, 3100


def test_oracle_settlement_first_round_after_the_deadline_is_left_out(setup):
    agg, feeds, expiry = setup
    at(expiry + 10)
    publish(feeds[0], 3000)
    publish(feeds[1], 3002)
    at(expiry + 2 * HOUR)
    publish(feeds[2], 9000)
    at(expiry + 2 * HOUR + 10)
    publish(feeds[2], 9100)
    assert hints(agg, feeds, expiry) == [2, 2, 2]
    assert agg.settlement_price(expiry, [2, 2, 2]) == 3001 * WAD


def test_oracle_settlement_phase_ids(setup):
    agg, feeds, expiry = setup
    now = boa.env.timestamp
    # feeds[1] moved to phase 1 before the expiry: rounds 1 << 64 | 1, | 2 ...
    feeds[1].set_round_data(PHASE | 1, 3000 * 10**8, now, now, PHASE | 1)
    at(expiry + 10)
    for f in feeds:
        publish(f, 3000)
    at(expiry + 20)
    publish(feeds[1], 3500)
    h = hints(agg, feeds, expiry)
    assert h == [2, PHASE | 2, 2]
    assert agg.settlement_price(expiry, h) == 3000 * WAD
    # The same aggregator round in phase 0 is not accepted.
    with boa.reverts("oracle: bad settlement hint"):
        agg.settlement_price(expiry, [2, 2, 2])


def test_oracle_settlement_phase_started_after_expiry_counts_as_missing(setup):
    agg, feeds, expiry = setup
    at(expiry + 10)
    publish(feeds[0], 3000)
    publish(feeds[1], 3002)
    now = boa.env.timestamp
    feeds[2].set_round_data(PHASE | 1, 3100 * 10**8, now, now, PHASE | 1)
    h = hints(agg, feeds, expiry)
    assert h == [2, 2, PHASE | 1]
    with boa.reverts("oracle: settlement source pending"):
        agg.settlement_price(expiry, h)
    at(expiry + HOUR + 1)
    assert agg.settlement_price(expiry, h) == 3001 * WAD


def test_oracle_settlement_skips_a_source_without_round_history(setup):
    agg, feeds, expiry = setup
    agg.set_round_history(feeds[2].address, False)
    assert events(agg) == [("RoundHistorySet", {"feed": feeds[2].address, "available": False})]
    assert [agg.round_history(i) for i in range(3)] == [True, True, False]
    at(expiry + 10)
    publish(feeds[0], 3000)
    publish(feeds[1], 3002)
    # feeds[2] never publishes and is not waited for; its hint is ignored.
    assert agg.settlement_price(expiry, [2, 2, 12345]) == 3001 * WAD
    agg.set_round_history(feeds[2].address, True)
    assert agg.round_history(2) is True
    with boa.reverts("oracle: settlement source pending"):
        agg.settlement_price(expiry, [2, 2, 0])


def test_oracle_round_history_reverts(setup):
    agg, feeds, _ = setup
    with boa.env.prank(boa.env.generate_address()), boa.reverts("ownable: not owner"):
        agg.set_round_history(feeds[0].address, False)
    with boa.reverts("oracle: unknown source"):
        agg.set_round_history(feed().address, False)
    with boa.reverts("oracle: no such source"):
        agg.round_history(3)


def test_oracle_round_history_flag_survives_source_moves(setup):
    agg, feeds, _ = setup
    agg.set_round_history(feeds[2].address, False)
    agg.remove_source(feeds[0].address)  # feeds[2] moves into slot 0, which holds the counts
    assert agg.source(0)[0] == feeds[2].address
    assert (agg.round_history(0), agg.round_history(1)) == (False, True)
    assert (agg.source_count(), agg.min_sources()) == (2, 2)
    agg.add_source(feed().address, HOUR)
    agg.set_min_sources(3)
    assert (agg.round_history(0), agg.source_count(), agg.min_sources()) == (False, 3, 3)
    assert agg.price()[0] == 3000 * WAD


def test_oracle_set_settlement_timeout(setup):
    agg, feeds, expiry = setup
    agg.set_settlement_timeout(60)
    assert events(agg) == [("SettlementTimeoutSet", {"old_timeout": HOUR, "new_timeout": 60})]
    assert agg.settlement_timeout() == 60
    agg.set_settlement_timeout(2 * 86400)
    with boa.reverts("oracle: bad settlement timeout"):
        agg.set_settlement_timeout(59)
    with boa.reverts("oracle: bad settlement timeout"):
        agg.set_settlement_timeout(2 * 86400 + 1)
    with boa.env.prank(boa.env.generate_address()), boa.reverts("ownable: not owner"):
        agg.set_settlement_timeout(HOUR)
    agg.set_settlement_timeout(60)
    at(expiry + 10)
    publish(feeds[0], 3000)
    publish(feeds[1], 3002)
    at(expiry + 61)
    assert agg.settlement_price(expiry, hints(agg, feeds, expiry)) == 3001 * WAD


# ----------------------------------------------------------------------------------------------
# Finding 4, on the whole protocol: a withholding source cannot choose the settlement moment
# ----------------------------------------------------------------------------------------------

E7 = P.expiry_in(8)


@pytest.fixture(scope="module")
def withholding(proto):
    """The test protocol (three feeds, min_sources 3) plus a fourth source, the withholder."""
    proto.engine.list_series(E7, 3000 * WAD, True)
    withholder = feed(3000)
    proto.oracle.add_source(withholder.address, HOUR)
    return proto, withholder


def test_oracle_withholding_source_cannot_pick_the_settlement(withholding):
    p, withholder = withholding
    at(E7 - 600)
    publish(withholder, 3000)  # fresh, but from before the expiry
    at(E7 + 60)
    p.set_spot(3000)  # the honest sources' first rounds after the expiry
    hints_now = p.settlement_hints(E7, [withholder])
    assert hints_now[3] == 0
    with boa.reverts("oracle: settlement source pending"):
        p.engine.settle_expiry(E7, hints_now)
    # 40 minutes later the market is at 3,300 and the withholder publishes.
    at(E7 + 40 * 60)
    p.set_spot(3300)
    publish(withholder, 3300)
    assert p.oracle.price()[0] == 3300 * WAD  # what the old settle_expiry recorded
    late = p.settlement_hints(E7, [withholder])
    assert late[:3] == hints_now[:3]
    p.engine.settle_expiry(E7, late)
    assert p.engine.settlement_price(E7) == 3000 * WAD  # median of 3000, 3000, 3000, 3300


def test_oracle_withholding_source_is_left_out_after_the_timeout(withholding):
    p, withholder = withholding
    at(E7 + 60)
    p.set_spot(3000)
    with boa.reverts("oracle: settlement source pending"):
        p.engine.settle_expiry(E7, p.settlement_hints(E7, [withholder]))
    at(E7 + HOUR + 1)
    p.set_spot(3300)
    publish(withholder, 3300)  # too late: dated after the deadline
    with boa.env.prank(boa.env.generate_address("late settler")):
        p.engine.settle_expiry(E7, p.settlement_hints(E7, [withholder]))
    assert p.engine.settlement_price(E7) == 3000 * WAD


def test_oracle_settle_expiry_with_a_wrong_hint_reverts(withholding):
    p, withholder = withholding
    at(E7 + 60)
    p.set_spot(3000)
    publish(withholder, 3000)
    at(E7 + 120)
    p.set_spot(3300)
    latest = [f.latestRoundData()[0] for f in (*p.feeds, withholder)]
    with boa.reverts("oracle: bad settlement hint"):
        p.engine.settle_expiry(E7, latest)
    with boa.reverts("oracle: one hint per source"):
        p.engine.settle_expiry(E7, p.settlement_hints(E7, [withholder])[:3])
    p.engine.settle_expiry(E7, p.settlement_hints(E7, [withholder]))
    assert p.engine.settlement_price(E7) == 3000 * WAD
