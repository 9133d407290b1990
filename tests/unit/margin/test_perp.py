"""Unit tests of contracts/margin/perp.vy's pure rules, through tests/contracts/PerpHarness.vy,
against keeper/perp.py (its Python twin, the same integers). The stored market, the golden
sequence and funding's zero sum are tests/unit/margin/test_perp_book.py's (PerpBook.vy).

Every test name contains "perp" (`pytest -k perp`). Fixed values are computed by hand in the
comments; every revert reason of the module has a test, the hard bounds are tried at their
edges; Hypothesis properties check the hourly funding cap and how far one fill moves the mark.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper import perp as kp
from tests.conftest import load, scaled

WAD = 10**18
HARNESS = "tests/contracts/PerpHarness.vy"
S = 2_000 * WAD
BAND = 5 * 10**16  # 5%
HALF_LIFE = 900
CONVERGENCE = 8
MAX_RATE = 10**15  # 0.1% per hour
PARAMS = kp.PerpParams(BAND, HALF_LIFE, CONVERGENCE, MAX_RATE)
LANE = PARAMS.pack()
T0 = 1_800_000_000


@pytest.fixture(scope="module")
def h():
    return load(HARNESS)


def market(
    premium: int = 0,
    mark_time: int = T0,
    funding_time: int = T0,
    index: int = 0,
    params: int = LANE,
):
    return (premium, mark_time, funding_time, index, params)


def twin(m: Any) -> kp.Market:
    """The harness's Market as keeper/perp.py's."""
    return kp.Market(m[0], m[1], m[2], m[3], kp.PerpParams.unpack(m[4]))


def as_tuple(m: kp.Market) -> tuple[int, int, int, int, int]:
    return (m.premium, m.mark_time, m.funding_time, m.index, m.params.pack())


# ---------------------------------------------------------------------------------------------
# Parameters


def test_perp_params_pack_to_the_documented_lane(h):
    # 500 bp | 1000 millionths << 11 | 900 << 25 | 8 << 42
    expected = 500 | 1000 << 11 | 900 << 25 | 8 << 42
    assert h.pack_params(BAND, HALF_LIFE, CONVERGENCE, MAX_RATE) == expected == LANE
    assert h.read_params(expected) == (BAND, HALF_LIFE, CONVERGENCE, MAX_RATE)
    assert kp.PerpParams.unpack(expected) == PARAMS


EDGES_OK = [
    (10**15, 60, 1, 0),  # every lower bound
    (2 * 10**17, 86_400, 168, 10**16),  # every upper bound
]
EDGES_BAD = [
    (10**15 - 10**14, 900, 8, MAX_RATE),  # band below 0.1%
    (2 * 10**17 + 10**14, 900, 8, MAX_RATE),  # band above 20%
    (BAND + 1, 900, 8, MAX_RATE),  # band not a whole basis point
    (BAND, 59, 8, MAX_RATE),  # half-life below a minute
    (BAND, 86_401, 8, MAX_RATE),  # half-life above a day
    (BAND, 900, 0, MAX_RATE),  # convergence below an hour
    (BAND, 900, 169, MAX_RATE),  # convergence above a week
    (BAND, 900, 8, 10**16 + 10**12),  # max rate above 1% an hour
    (BAND, 900, 8, MAX_RATE + 1),  # max rate not a whole millionth
]


@pytest.mark.parametrize("args", EDGES_OK)
def test_perp_params_accept_their_bounds(h, args):
    lane = h.pack_params(*args)
    assert h.read_params(lane) == args
    assert kp.PerpParams(*args).pack() == lane


@pytest.mark.parametrize("args", EDGES_BAD)
def test_perp_params_reject_outside_bounds(h, args):
    with boa.reverts("engine: bad perp params"):
        h.pack_params(*args)
    with pytest.raises(kp.PerpError, match="engine: bad perp params"):
        kp.PerpParams(*args)


# ---------------------------------------------------------------------------------------------
# Mark


def test_perp_weight_fixed_values(h):
    assert h.weight(0, HALF_LIFE) == 0  # later fills in one block weigh nothing
    assert h.weight(HALF_LIFE, HALF_LIFE) == WAD // 2  # 1 - 2^-1
    assert h.weight(10 * HALF_LIFE, HALF_LIFE) == WAD // 2  # capped at one half-life
    exact = (1 - Decimal(2) ** Decimal("-0.5")) * WAD  # 292893218813452475.599...
    assert abs(h.weight(HALF_LIFE // 2, HALF_LIFE) - exact) < 2
    assert h.weight(HALF_LIFE // 2, HALF_LIFE) <= exact + 1


@given(dt=st.integers(0, 2 * 86_400), half_life=st.integers(60, 86_400))
@settings(max_examples=scaled(60))
def test_perp_weight_matches_twin_and_is_bounded(h, dt, half_life):
    w = h.weight(dt, half_life)
    assert w == kp.weight(dt, half_life)
    assert 0 <= w <= WAD // 2 + 1


def test_perp_premium_band_edges(h):
    # S = 2000, band 5%: fills in [1900, 2100] inclusive.
    assert h.premium_of(2_100 * WAD, S, BAND) == BAND
    assert h.premium_of(1_900 * WAD, S, BAND) == -BAND
    assert h.premium_of(S + WAD // 2, S, BAND) == 25 * 10**13  # 0.5 / 2000 = 0.00025
    assert h.premium_of(S, S, BAND) == 0
    for price in (2_100 * WAD + 1, 1_900 * WAD - 1, 0, -(2**200)):
        with boa.reverts("engine: perp price outside band"):
            h.premium_of(price, S, BAND)
        with pytest.raises(kp.PerpError, match="outside band"):
            kp.premium_of(price, S, BAND)


def test_perp_fill_moves_mark_by_its_weight(h):
    # One half-life after listing, a fill at 2100 (x = 5%) with weight 1/2: pbar = 2.5%,
    # M = 2000 * 1.025 = 2050. Funding before it accrued at pbar = 0: F stays 0.
    m = h.fill_market(market(), 2_100 * WAD, S, T0 + HALF_LIFE)
    assert tuple(m) == (BAND // 2, T0 + HALF_LIFE, T0 + HALF_LIFE, 0, LANE)
    assert h.mark(m, S) == 2_050 * WAD
    # A second fill in the same block weighs nothing, whatever its price.
    assert tuple(h.fill_market(m, 1_900 * WAD, S, T0 + HALF_LIFE)) == tuple(m)
    # A fill outside the band reverts and nothing moves.
    with boa.reverts("engine: perp price outside band"):
        h.fill_market(m, 2_100 * WAD + 1, S, T0 + 2 * HALF_LIFE)


def test_perp_mark_follows_the_index_without_fills(h):
    # pbar = 2.5%: at S = 1000 the mark is 1025, not the 2050 of the last fills.
    m = market(premium=BAND // 2)
    assert h.mark(m, 1_000 * WAD) == 1_025 * WAD
    # A negative premium rounds toward S: pbar = -1 wei at S = 3 wei gives M = 3.
    assert h.mark(market(premium=-1), 3) == 3


# ---------------------------------------------------------------------------------------------
# Funding


def test_perp_funding_rate_clamps(h):
    # pbar / 8: 0.8% -> 0.1%, capped at max_rate 0.1%; -0.4% -> -0.05%.
    assert h.funding_rate(market(premium=8 * 10**15)) == MAX_RATE // 1
    assert h.funding_rate(market(premium=4 * 10**16)) == MAX_RATE  # 0.5% capped
    assert h.funding_rate(market(premium=-4 * 10**15)) == -5 * 10**14
    assert h.funding_rate(market(premium=-4 * 10**16)) == -MAX_RATE
    assert h.funding_rate(market(premium=7)) == 0  # 7 / 8 rounds toward zero


def test_perp_funding_index_fixed_values(h):
    # pbar = 2.5%, S = 2000: uncapped 2.5% / 8 = 0.3125% an hour = 6.25 USD per unit, capped at
    # 0.1% = 2 USD per unit per hour. One hour: F = 2; half an hour: 1; one second: 2/3600.
    m = market(premium=BAND // 2)
    assert h.index_at(m, S, T0 + 3_600) == 2 * WAD
    assert h.index_at(m, S, T0 + 1_800) == WAD
    assert h.index_at(m, S, T0 + 1) == 2 * WAD // 3_600  # 555555555555555.55 truncated
    # Under a 1% cap the uncapped 6.25 USD an hour applies.
    wide = kp.PerpParams(BAND, HALF_LIFE, CONVERGENCE, 10**16).pack()
    assert h.index_at(market(premium=BAND // 2, params=wide), S, T0 + 3_600) == 6_250 * 10**15
    # Negative premium: shorts pay, F falls; -5.55...e14 truncates toward zero.
    assert h.index_at(market(premium=-BAND // 2), S, T0 + 1) == -(2 * WAD // 3_600)
    # Same time: no change; accrual writes the time.
    assert h.index_at(m, S, T0) == 0
    assert tuple(h.accrue(m, S, T0 + 3_600)) == (BAND // 2, T0, T0 + 3_600, 2 * WAD, LANE)


def test_perp_funding_reverts(h):
    m = market()
    with boa.reverts("engine: perp clock went back"):
        h.index_at(m, S, T0 - 1)
    with boa.reverts("engine: perp time out of range"):
        h.index_at(m, S, 2**40)
    assert h.index_at(m, S, 2**40 - 1) == 0
    with boa.reverts("engine: perp time out of range"):
        h.new_market(LANE, 2**40)
    for spot in (0, -1, 10**36 + 1):
        with boa.reverts("engine: perp index out of range"):
            h.index_at(m, spot, T0 + 1)
        with boa.reverts("engine: perp index out of range"):
            h.mark(m, spot)
        with boa.reverts("engine: perp index out of range"):
            h.settle_position((WAD, S, 0), spot, 0)
    # The largest index with the largest premium and rate over the longest time fits.
    top = kp.PerpParams(2 * 10**17, 60, 1, 10**16).pack()
    big = h.index_at(
        market(premium=2 * 10**17, mark_time=0, funding_time=0, params=top), 10**36, 2**40 - 1
    )
    assert big == 10**16 * 10**36 * (2**40 - 1) // (3_600 * WAD)
    assert big < 2**142


def test_perp_set_params_accrues_then_clamps(h):
    # Old params accrue one hour at 2 USD per unit, then pbar 5% is clamped into the new 2% band.
    new = kp.PerpParams(2 * 10**16, 60, 1, 10**16).pack()
    m = h.set_market_params(market(premium=BAND), new, S, T0 + 3_600)
    assert tuple(m) == (2 * 10**16, T0, T0 + 3_600, 2 * WAD, new)
    m = h.set_market_params(market(premium=-BAND), new, S, T0)
    assert m[0] == -2 * 10**16


# ---------------------------------------------------------------------------------------------
# Positions and settlement


def test_perp_settlement_fixed_values(h):
    # Long 3 at P = 2000, F0 = 0; S = 2010, F = 2: 3 * (10 - 2) = 24 USD. The short pays 24.
    pos, cash = h.settle_position((3 * WAD, S, 0), 2_010 * WAD, 2 * WAD)
    assert tuple(pos) == (3 * WAD, 2_010 * WAD, 2 * WAD) and cash == 24 * WAD
    assert h.settle_position((-3 * WAD, S, 0), 2_010 * WAD, 2 * WAD)[1] == -24 * WAD
    # Rounding: 1 wei of size times a 1-wei move is 1e-18 wei: the receiver gets 0, the payer 1.
    assert h.settle_position((1, S, 0), S + 1, 0)[1] == 0
    assert h.settle_position((-1, S, 0), S + 1, 0)[1] == -1
    assert h.settle_position((1, S, 0), S, 1)[1] == -1  # funding paid rounds up too
    # Flat: nothing, but the position is reset to the current index.
    assert tuple(h.settle_position((0, 5, 7), S, 9)[0]) == (0, S, 9)


def test_perp_funding_owed_rounds_up(h):
    assert h.funding_owed((3 * WAD, S, 0), 2 * WAD) == 6 * WAD
    assert h.funding_owed((-3 * WAD, S, 0), 2 * WAD) == -6 * WAD
    assert h.funding_owed((1, S, 0), 1) == 1  # owes 1e-18 wei: 1
    assert h.funding_owed((-1, S, 0), 1) == 0  # is owed 1e-18 wei: 0
    # Only the index's change since the last settlement counts: F0 = 1.5, F = 2 -> 3 * 0.5.
    assert h.funding_owed((3 * WAD, S, 3 * WAD // 2), 2 * WAD) == 3 * WAD // 2
    assert h.funding_owed((-3 * WAD, S, -WAD), 2 * WAD) == -9 * WAD


def test_perp_fill_payment_rounds_for_the_payer(h):
    # Buy 3 at 2001 against S = 2000: the buyer pays 3. At 1999 the seller pays 3.
    assert h.fill_payment(3 * WAD, 2_001 * WAD, S) == 3 * WAD
    assert h.fill_payment(3 * WAD, 1_999 * WAD, S) == -3 * WAD
    assert h.fill_payment(-3 * WAD, 2_001 * WAD, S) == 3 * WAD  # the magnitude is used
    assert h.fill_payment(1, S + 1, S) == 1
    assert h.fill_payment(1, S - 1, S) == -1
    assert h.fill_payment(5 * WAD, S, S) == 0


def test_perp_trade_size_bounds(h):
    top = 2**96
    pos, cash = h.trade((top - 1, S, 0), 1, S, 0)
    assert tuple(pos) == (top, S, 0) and cash == 0
    assert h.trade((0, 0, 0), -top, S, 0)[0][0] == -top
    with boa.reverts("engine: perp size too large"):
        h.trade((top, S, 0), 1, S, 0)
    with boa.reverts("engine: perp size too large"):
        h.trade((-top, S, 0), -1, S, 0)
    # Settlement before the size change: long 2 from 2000 to 2100 earns 200, then sells 1.
    pos, cash = h.trade((2 * WAD, S, 0), -WAD, 2_100 * WAD, 0)
    assert tuple(pos) == (WAD, 2_100 * WAD, 0) and cash == 200 * WAD


def test_perp_packing_round_trips_at_the_edges(h):
    top = kp.PerpParams(2 * 10**17, 86_400, 168, 10**16).pack()
    low = kp.PerpParams(10**15, 60, 1, 0).pack()
    for m in (
        market(),
        market(
            premium=2 * 10**17,
            mark_time=2**40 - 1,
            funding_time=2**40 - 1,
            index=2**142,
            params=top,
        ),
        market(premium=-2 * 10**17, mark_time=0, funding_time=0, index=-(2**142), params=low),
    ):
        words = h.pack_market(m)
        assert tuple(h.unpack_market(words)) == m
        assert tuple(words) == kp.pack_market(twin(m))
        assert as_tuple(kp.unpack_market(tuple(words))) == m
    # Every bit of the 50-bit params lane survives (the lanes do not overlap).
    assert h.unpack_market(h.pack_market(market(params=2**50 - 1)))[4] == 2**50 - 1
    for p in ((2**96, 10**36, 2**143), (-(2**96), 1, -(2**143)), (0, S, 0)):
        words = h.pack_position(p)
        assert tuple(h.unpack_position(words)) == p
        assert tuple(words) == kp.pack_position(kp.Position(*p))
        assert kp.unpack_position(tuple(words)) == kp.Position(*p)
    # An account that never traded: two zero words, a flat position.
    assert tuple(h.unpack_position((0, 0))) == (0, 0, 0)


# ---------------------------------------------------------------------------------------------
# Properties

prices_in_band = st.integers(-1_000_000, 1_000_000)  # millionths of the band


@given(
    premium=st.integers(-2 * 10**17, 2 * 10**17),
    rate=st.integers(0, 10_000),
    convergence=st.integers(1, 168),
    spot=st.integers(1, 10**36),
    size=st.integers(-(2**96), 2**96),
    cuts=st.lists(st.integers(1, 3_599), max_size=4, unique=True),
    start=st.integers(-(2**140), 2**140),
)
@settings(max_examples=scaled(60))
def test_perp_hourly_funding_never_exceeds_the_cap(
    h, premium, rate, convergence, spot, size, cuts, start
):
    """Over one hour at a fixed index, accrued in one step or several, a position pays at most
    max_rate * |q| * S (rounded up to the wei), and receives no more than that either."""
    lane = kp.PerpParams(2 * 10**17, 900, convergence, rate * 10**12).pack()
    m = market(premium=premium, index=start, params=lane)
    for t in sorted(cuts):
        m = h.accrue(m, spot, T0 + t)
    m = h.accrue(m, spot, T0 + 3_600)
    owed = h.funding_owed((size, spot, start), m[3])
    cap = -(-(rate * 10**12) * abs(size) * spot // WAD**2)
    assert abs(owed) <= cap
    # keeper/perp.py reproduces the index exactly.
    km = twin(market(premium=premium, index=start, params=lane))
    for t in sorted(cuts):
        km = kp.accrue(km, spot, T0 + t)
    assert kp.accrue(km, spot, T0 + 3_600).index == m[3]


@given(
    premium=st.integers(-(10**6), 10**6),
    where=prices_in_band,
    dt=st.integers(0, 3 * 86_400),
    band_bp=st.integers(10, 2_000),
    half_life=st.integers(60, 86_400),
    spot=st.integers(10**6, 10**36),
)
@settings(max_examples=scaled(60))
def test_perp_one_fill_moves_the_mark_by_at_most_weight_times_band(
    h, premium, where, dt, band_bp, half_life, spot
):
    """|M' - M| <= w(dt) * 2 band * S (the band's width) plus one wei of the mark's rounding, at
    the same index; pbar stays within the band; the twin agrees."""
    band = band_bp * 10**14
    lane = kp.PerpParams(band, half_life, 8, MAX_RATE).pack()
    m = market(premium=band * premium // 10**6, params=lane)
    price = spot + band * spot // WAD * where // 10**6
    after = h.fill_market(m, price, spot, T0 + dt)
    w = h.weight(dt, half_life)
    moved = abs(h.mark(after, spot) - h.mark(m, spot))
    assert moved <= -(-w * 2 * band * spot // WAD**2) + 1
    assert abs(after[0]) <= band
    assert tuple(after) == as_tuple(kp.fill(twin(m), price, spot, T0 + dt))


@given(x=st.integers(kp._EXP_MIN - 10**18, kp._EXP_MAX))
@settings(max_examples=scaled(100))
def test_perp_twin_exp_wad_matches_wad_vy(lens, x):
    """keeper/perp.py's port of wad.exp_wad equals the contract's to the wei on its whole
    domain (the EMA weight uses [-ln2, 0]; the rest guards the port itself)."""
    assert kp.exp_wad(x) == lens.exp_wad(x)
