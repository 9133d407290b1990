"""Issue #20, findings 1-3: outliers, broken sources and min_sources, on the whole protocol.

1. One source of three answering 1.5x spot used to drive the confidence to 0.50 (spread over
   every answer) and a short-put account from H_MM +1,121.48 to -378.52. The confidence is
   now taken over the tightest strict majority around the median (contracts/oracle/
   OracleAggregator.vy, "Confidence rule"): with k <= floor((m - 1) / 2) bad answers it is at
   least 1 - (max H - min H) / median over the honest answers H.
2. One broken source (reverting, future-dated, zero, incomplete, too large, ...) used to make
   price() and so start_auction revert; it is now skipped and shown by source_status().
3. The test wiring and the local configs need all three sources (min_sources 3): a median of
   two (one honest, one malicious) is no longer possible.
"""

from __future__ import annotations

from typing import Any

import boa
import pytest

from kappa_ops.config import CONFIG_DIR, load_config
from keeper.liquidation import NO_WITNESS
from tests import deployment
from tests import protocol as P  # noqa: N812
from tests.conftest import deployer, load, new_transaction

WAD = 10**18
E7 = P.expiry_in(8)
HOUR = 3600
FRESH, STALE, MALFORMED, REVERTING, DECIMALS = range(5)
# The victim of tests/protocol.short_puts (10 puts K = 2,800, one week, vol 0.6, 3,000 USD)
# at spot 3,000: H_MM = +1,121.48.
H_MM_AT_3000 = 1_121_481_601_041_979_433_160
CONF_MM = deployment.MM[3]


pytestmark = pytest.mark.usefixtures("isolate")


@pytest.fixture
def victim(proto) -> str:
    put = proto.engine.list_series(E7, 2800 * WAD, False)
    return P.short_puts(proto, put)


def mock(decimals: int, answer: float) -> Any:
    return deployer("contracts/mocks/MockAggregatorV3.vy").deploy(
        decimals, "ETH / USD", round(answer * 10**decimals)
    )


def hostile(decimals: int, answer: float) -> Any:
    return deployer("tests/contracts/HostileFeed.vy").deploy(decimals, round(answer * 10**decimals))


def confidence_bound(honest: list[int], median: int) -> int:
    """1 - (max H - min H) / median, as the contract rounds (ratio up)."""
    return max(0, WAD - -(-(max(honest) - min(honest)) * WAD // median))


# ----------------------------------------------------------------------------------------------
# Finding 1: one outlier cannot collapse the confidence
# ----------------------------------------------------------------------------------------------


def test_oracle_outlier_at_one_and_a_half_spot_keeps_short_put_healthy(proto, victim):
    assert proto.engine.margin(victim)[2] == H_MM_AT_3000
    assert proto.oracle.price()[:2] == (3000 * WAD, WAD)
    proto.feeds[2].set_answer(4500 * 10**6)  # the 6-decimal source answers 1.5x spot
    median, confidence, _ = proto.oracle.price()
    assert median == 3000 * WAD
    # The honest pair agrees exactly: the bound is 1 and the outlier is outside the majority.
    assert confidence >= confidence_bound([3000 * WAD, 3000 * WAD], median) == WAD
    assert confidence == WAD
    assert proto.engine.margin(victim)[2] == H_MM_AT_3000
    with boa.reverts("liquidator: healthy"):
        proto.liquidator.start_auction(victim, NO_WITNESS)
    # What the old rule did: confidence 1 - 1,500/3,000 = 0.5 adds (1 - 0.5) * conf_MM * 10
    # options * 3,000 = 1,500 USD of contingency, H_MM 1,121.48 - 1,500 = -378.52.
    old_extra = (WAD - WAD // 2) * CONF_MM // WAD * 10 * 3000
    assert old_extra == 1500 * WAD
    assert H_MM_AT_3000 - old_extra == -378_518_398_958_020_566_840


def test_oracle_outlier_next_to_disagreeing_honest_sources_meets_the_bound(proto, victim):
    proto.feeds[0].set_answer(2990 * 10**8)
    proto.feeds[1].set_answer(3010 * WAD)
    proto.feeds[2].set_answer(4500 * 10**6)
    median, confidence, _ = proto.oracle.price()
    assert median == 3010 * WAD
    # The tightest pair is the honest one: the bound holds with equality.
    assert confidence == confidence_bound([2990 * WAD, 3010 * WAD], median)
    assert confidence == WAD - -(-20 * WAD * WAD // (3010 * WAD))
    assert proto.engine.margin(victim)[2] > 0


def test_oracle_two_bad_of_five_cannot_lower_the_confidence_below_the_honest_spread(proto):
    extra = [mock(8, 4500), mock(8, 1)]
    for f in extra:
        proto.oracle.add_source(f.address, HOUR)
    proto.feeds[0].set_answer(2990 * 10**8)
    proto.feeds[2].set_answer(3010 * 10**6)
    median, confidence, _ = proto.oracle.price()
    assert median == 3000 * WAD
    honest = [2990 * WAD, 3000 * WAD, 3010 * WAD]
    assert confidence >= confidence_bound(honest, median)
    assert confidence == confidence_bound(honest, median)


# ----------------------------------------------------------------------------------------------
# Finding 2: one broken source cannot stop liquidations
# ----------------------------------------------------------------------------------------------


def _break(kind: str, now: int) -> tuple[Any, int]:
    """A fourth source broken as `kind`, and the status it must show."""
    if kind in ("reverting", "out of gas", "short data", "round id above uint80"):
        feed = hostile(8, 2200)
        return feed, REVERTING if kind in ("reverting", "out of gas") else MALFORMED
    feed = mock(8, 2200)
    return feed, MALFORMED


BROKEN = [
    "reverting",
    "out of gas",
    "short data",
    "round id above uint80",
    "future-dated round",
    "zero answer",
    "negative answer",
    "answeredInRound < roundId",
    "updatedAt 0",
    "int256 max answer",
    "answer above 1e36",
]


@pytest.mark.parametrize("kind", BROKEN)
def test_oracle_broken_fourth_source_is_skipped_and_liquidation_starts(proto, victim, kind):
    now = boa.env.timestamp
    feed, status = _break(kind, now)
    proto.oracle.add_source(feed.address, HOUR)
    proto.set_spot(2200)
    assert proto.engine.margin(victim)[0] < 0  # insolvent at 2,200
    assert proto.oracle.source_status() == [FRESH] * 4
    if kind == "reverting":
        feed.set_mode(1)
    elif kind == "out of gas":
        feed.set_mode(2)
    elif kind == "short data":
        feed.set_mode(3)
    elif kind == "round id above uint80":
        feed.set_mode(4)
    elif kind == "future-dated round":
        feed.set_round_data(9, 2200 * 10**8, now, now + 1, 9)
    elif kind == "zero answer":
        feed.set_answer(0)
    elif kind == "negative answer":
        feed.set_answer(-1)
    elif kind == "answeredInRound < roundId":
        feed.set_round_data(9, 2200 * 10**8, now, now, 8)
    elif kind == "updatedAt 0":
        feed.set_round_data(9, 2200 * 10**8, now, 0, 9)
    elif kind == "int256 max answer":
        feed.set_answer(2**255 - 1)
    else:
        feed.set_answer(10**28 + 1)  # 8 decimals: 1e36 + 1e10 as a wad
    assert proto.oracle.source_status() == [FRESH, FRESH, FRESH, status]
    assert proto.oracle.price()[:2] == (2200 * WAD, WAD)
    proto.liquidator.start_auction(victim, NO_WITNESS)
    assert proto.liquidator.auction_start(victim) == boa.env.timestamp


def test_oracle_source_gas_is_bounded(proto):
    feed = hostile(8, 3000)
    proto.oracle.add_source(feed.address, HOUR)
    feed.set_mode(2)
    proto.oracle.price()
    # Three mock feeds (about 11,000 each) plus the burner's allowance of 100,000.
    assert proto.oracle._computation.get_gas_used() < 150_000


def test_oracle_changed_decimals_are_reported_and_the_median_rejects_them(proto):
    feed = hostile(8, 3000)
    proto.oracle.add_source(feed.address, HOUR)
    feed.set_decimals(6)
    # price() keeps the cached 8 decimals (the answer is still 3,000.00000000); the status
    # view tells the owner to re-add it.
    assert proto.oracle.source_status() == [FRESH, FRESH, FRESH, DECIMALS]
    assert proto.oracle.price()[:2] == (3000 * WAD, WAD)


def test_oracle_too_many_decimals_cannot_be_added(proto):
    with boa.reverts("oracle: too many decimals"):
        proto.oracle.add_source(hostile(19, 1).address, HOUR)


def test_oracle_all_but_min_sources_broken_reverts(proto):
    proto.feeds[0].set_answer(0)
    with boa.reverts("oracle: too few fresh sources"):
        proto.oracle.price()
    assert proto.oracle.source_status() == [MALFORMED, FRESH, FRESH]


# ----------------------------------------------------------------------------------------------
# Finding 3: no median of two
# ----------------------------------------------------------------------------------------------


def test_oracle_test_wiring_needs_three_sources(proto):
    assert deployment.MIN_SOURCES >= 3
    assert (proto.oracle.source_count(), proto.oracle.min_sources()) == (3, 3)


def test_oracle_shipped_local_configs_need_three_sources():
    for path in sorted(CONFIG_DIR.glob("*-local.yaml")):
        config = load_config(path)
        assert config.mocks is not None, path
        assert len(config.mocks.feed_decimals) >= 3, path
        assert config.oracle.min_sources >= 3, path


def test_oracle_one_stale_one_malicious_is_not_a_median_of_two(proto):
    now = boa.env.timestamp
    proto.feeds[0].set_round_data(99, 3000 * 10**8, now - 2 * HOUR, now - 2 * HOUR, 99)
    proto.feeds[2].set_answer(6000 * 10**6)
    # With min_sources 2 this was (3000 + 6000) / 2 = 4,500; now there is no price.
    with boa.reverts("oracle: too few fresh sources"):
        proto.oracle.price()
    assert proto.oracle.source_status() == [STALE, FRESH, FRESH]
    # And with min_sources 2 set by hand, the contract does what it was told.
    proto.oracle.set_min_sources(2)
    assert proto.oracle.price()[0] == 4500 * WAD


def test_oracle_single_answer_aggregator_loads(proto):
    # A testnet with one feed (README, "Oracle"): min_sources 1 is accepted.
    agg = load(
        "contracts/oracle/OracleAggregator.vy",
        [proto.feeds[0].address],
        [HOUR],
        1,
        "0x" + "00" * 20,
        HOUR,
        0,
    )
    assert agg.price()[:2] == (3000 * WAD, WAD)


# ----------------------------------------------------------------------------------------------
# A caller cannot drop a source by starving it of gas
# ----------------------------------------------------------------------------------------------


def test_oracle_caller_gas_limit_cannot_drop_an_honest_source():
    """A source that burns its allowance comes first; for every gas limit the call either
    fails or prices from all three honest sources: an honest source starved by the caller's
    limit reverts the call ("oracle: out of gas") instead of being skipped."""

    # A fresh environment: committing state between calls (new_transaction) is not
    # compatible with the per-test anchor.
    with boa.swap_env(boa.Env()):
        burner = hostile(8, 3000)
        burner.set_mode(2)
        honest = [mock(8, a) for a in (2990, 3000, 3100)]
        agg = load(
            "contracts/oracle/OracleAggregator.vy",
            [burner.address] + [f.address for f in honest],
            [HOUR] * 4,
            2,
            "0x" + "00" * 20,
            HOUR,
            0,
        )
        caller = load("tests/contracts/GasLimitedCaller.vy")
        selector = bytes.fromhex("a035b1fe")  # price()
        full = agg.price()
        assert full[0] == 3000 * WAD
        outcomes: dict[str, int] = {}
        for gas in range(100_000, 160_000, 250):
            new_transaction()  # cold accounts, as in a transaction of its own
            ok, out = caller.call(agg.address, selector, gas)
            if ok:
                got = tuple(int.from_bytes(out[i : i + 32], "big") for i in (0, 32, 64))
                assert got == full, f"gas {gas}: priced from fewer sources: {got}"
                outcomes["full"] = outcomes.get("full", 0) + 1
            elif b"oracle: out of gas" in out:
                outcomes["out of gas"] = outcomes.get("out of gas", 0) + 1
            else:
                outcomes["failed"] = outcomes.get("failed", 0) + 1
    assert outcomes.get("full") and outcomes.get("out of gas"), outcomes


def test_oracle_caller_gas_limit_cannot_drop_a_settlement_source():
    """As above for settlement_price: a burner first, then three honest sources with a round
    after the expiry; every gas limit either fails or settles at the three honest rounds."""
    from eth_abi import encode
    from eth_utils import keccak

    with boa.swap_env(boa.Env()):
        burner = hostile(8, 3000)
        burner.set_mode(2)
        honest = [mock(8, 3000) for _ in range(3)]
        agg = load(
            "contracts/oracle/OracleAggregator.vy",
            [burner.address] + [f.address for f in honest],
            [HOUR] * 4,
            2,
            "0x" + "00" * 20,
            HOUR,
            0,
        )
        expiry = boa.env.timestamp + 60
        boa.env.time_travel(seconds=120)
        for f, answer in zip(honest, (2990, 3000, 3100), strict=True):
            f.set_answer(answer * 10**8)
        boa.env.time_travel(seconds=HOUR)  # the burner is missing: left out after the timeout
        hints = [0, 2, 2, 2]
        assert agg.settlement_price(expiry, hints) == 3000 * WAD
        caller = load("tests/contracts/GasLimitedCaller.vy")
        data = keccak(b"settlement_price(uint256,uint80[])")[:4] + encode(
            ["uint256", "uint80[]"], [expiry, hints]
        )
        outcomes: dict[str, int] = {}
        for gas in range(100_000, 190_000, 500):
            new_transaction()
            ok, out = caller.call(agg.address, data, gas)
            if ok:
                assert int.from_bytes(out[:32], "big") == 3000 * WAD, f"gas {gas}"
                outcomes["full"] = outcomes.get("full", 0) + 1
            elif b"oracle: out of gas" in out:
                outcomes["out of gas"] = outcomes.get("out of gas", 0) + 1
            else:
                outcomes["failed"] = outcomes.get("failed", 0) + 1
    assert outcomes.get("full") and outcomes.get("out of gas"), outcomes
