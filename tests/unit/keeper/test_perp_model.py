"""keeper/perp.py on its own: the float helpers against the exact integer rules, the book's
all-or-nothing fills, and the parameter checks' messages. (The integer rules against the
contract are tests/unit/margin/test_perp.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper import perp as kp

WAD = kp.WAD
S = 2_000 * WAD
PARAMS = kp.PerpParams(band=5 * 10**16, half_life=900, convergence_hours=8, max_rate=10**15)


@given(dt=st.integers(0, 200_000), half_life=st.integers(60, 86_400))
@settings(max_examples=200)
def test_perp_float_weight_matches_exact(dt, half_life):
    # The exact weight is within 1 wei of the real one; float64 within 1e-15 relative.
    exact = kp.weight(dt, half_life) / WAD
    assert float(kp.ema_weight_float(dt, half_life)) == pytest.approx(exact, rel=1e-15, abs=2e-18)


@given(premium=st.integers(-2 * 10**17, 2 * 10**17), convergence=st.integers(1, 168))
def test_perp_float_rate_matches_exact(premium, convergence):
    market = kp.Market(premium, 0, 0, 0, kp.PerpParams(2 * 10**17, 900, convergence, 10**16))
    exact = kp.funding_rate(market) / WAD
    approx = float(kp.funding_rate_float(premium / WAD, convergence, 0.01))
    assert approx == pytest.approx(exact, abs=2e-18)


def test_perp_float_pnl_and_cap_vectorized():
    sizes = np.array([3.0, -3.0, 0.0])
    pnl = kp.unsettled_float(sizes, [2_000.0] * 3, [0.0] * 3, 2_010.0, 2.0)
    assert pnl.tolist() == [24.0, -24.0, 0.0]
    for q in (3 * WAD, -3 * WAD):
        _, cash = kp.settle(kp.Position(q, S, 0), 2_010 * WAD, 2 * WAD)
        assert cash / WAD == pnl[0 if q > 0 else 1]
    assert kp.max_hourly_funding(sizes, 2_000.0, 0.001).tolist() == [6.0, 6.0, 0.0]


def test_perp_book_fill_is_all_or_nothing():
    book = kp.PerpBook(kp.new_market(PARAMS, 0))
    book.fill("a", "b", 2**96, S, S, 900)
    before = (book.market, dict(book.positions), dict(book.cash), book.open_interest)
    # The buyer would pass 2**96: the whole fill fails and nothing moves, market included.
    with pytest.raises(kp.PerpError, match="engine: perp size too large"):
        book.fill("a", "c", 1, 2_100 * WAD, S, 1_800)
    assert (book.market, book.positions, book.cash, book.open_interest) == before
    # So does a liquidation move that would take the target past 2**96. The twin's reasons
    # are PerpBook.vy's.
    book.fill("c", "d", 2**96, S, S, 1_000)
    before = (book.market, dict(book.positions), dict(book.cash), book.open_interest)
    with pytest.raises(kp.PerpError, match="engine: perp size too large"):
        book.move("c", "a", WAD, S, 1_800)
    assert (book.market, book.positions, book.cash, book.open_interest) == before
    with pytest.raises(kp.PerpError, match="perp: self trade"):
        book.fill("a", "a", 1, S, S, 1_800)
    with pytest.raises(kp.PerpError, match="perp: size"):
        book.fill("a", "b", 0, S, S, 1_800)
    with pytest.raises(kp.PerpError, match="perp: fraction"):
        book.move("a", "b", 0, S, 1_800)
    with pytest.raises(kp.PerpError, match="outside band"):
        book.fill("a", "b", 1, 2_100 * WAD + 1, S, 1_800)


def test_perp_exp_wad_overflow_and_saturation():
    assert kp.exp_wad(0) == WAD
    assert kp.exp_wad(kp._EXP_MIN - 1) == 0
    assert kp.exp_wad(kp._EXP_MAX) > 0
    with pytest.raises(kp.PerpError, match="wad: exp overflow"):
        kp.exp_wad(kp._EXP_MAX + 1)


def test_perp_market_words_round_trip():
    market = kp.Market(-(10**17), 12, 34, -(2**140), PARAMS)
    assert kp.unpack_market(kp.pack_market(market)) == market
    assert kp.unpack_position((0, 0)) == kp.Position()
