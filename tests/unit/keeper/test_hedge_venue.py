"""keeper/hedging.py: the venue choice between the spot pools and the perp (hedge_venue)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.hedging import (
    VENUE_NONE,
    VENUE_PERP,
    VENUE_POOLS,
    PerpQuotes,
    hedge_venue,
    perp_hedge_cost,
    plan_hedge,
    pool_hedge_cost,
)

E18, E6 = 10**18, 10**6
S = 3000.0
# One deep WETH/USDC pool at the index: 1,000,000 WETH, 3e9 USDC, 5 bps.
DEEP_U, DEEP_C, DEEP_FEE = [1_000_000 * E18], [3_000_000_000 * E6], [5]
# The local deployment's three pools (as tests/unit/keeper/test_keeper_hedging.py).
RU = [2000 * E18, 1000 * E18, 500 * E18]
RC = [2000 * 3000 * E6, 1000 * 3000 * E6, 500 * 3000 * E6]
FEES = [5, 30, 100]
# Pool costs come from float64 arithmetic on ~6,000 USD of cash (the bisection stops at 1e-15
# relative), so they are exact to ~1e-11 USD; 1e-10 USD is the tolerance against the closed
# forms. Perp costs are two or three float operations on numbers of size ~1e4: 1e-12 USD.
POOL_TOL, PERP_TOL = 1e-10, 1e-12


def _one_pool_sale_cost(d: int, fee_bps: int = 5) -> float:
    """d * S - y g d / (x + g d) for the deep pool, in exact rationals (USD)."""
    x, y, g = Fraction(1_000_000), Fraction(3_000_000_000), 1 - Fraction(fee_bps, 10_000)
    return float(d * Fraction(3000) - y * g * d / (x + g * d))


def _one_pool_purchase_cost(o: int, fee_bps: int = 5) -> float:
    """The least cash x o / (g (y - o)) buying o units from the deep pool, less o * S (USD)."""
    x, y, g = Fraction(3_000_000_000), Fraction(1_000_000), 1 - Fraction(fee_bps, 10_000)
    return float(x * o / (g * (y - o)) - o * Fraction(3000))


def _venue(d, quotes, rate, hours, band=0.01, held=None):
    return hedge_venue(
        d, S, DEEP_U, DEEP_C, DEEP_FEE, quotes, rate, hours, band, underlying_held=held
    )


def test_pool_costs_match_the_closed_form_of_one_pool():
    cost = pool_hedge_cost([2.0, -2.0, 0.0], S, DEEP_U, DEEP_C, DEEP_FEE)
    # Selling 2 WETH: 3 USD of fees (5 bps of 6,000) and ~0.012 USD of impact.
    assert cost[0] == pytest.approx(_one_pool_sale_cost(2), abs=POOL_TOL)
    assert cost[1] == pytest.approx(_one_pool_purchase_cost(2), abs=POOL_TOL)
    assert cost[2] == 0.0
    assert 3.0 < cost[0] < 3.02 and 3.0 < cost[1] < 3.02


def test_a_short_hedge_takes_a_bid_at_a_premium_when_funding_is_paid_to_shorts():
    # Long 2 WETH of delta: sell 2. A bid 1 USD over the index earns 2 USD, and 8 hours of
    # +1 bp/h funding pay the short 2 * 3000 * 0.0001 * 8 = 4.8 USD: cost -2 - 4.8 = -6.8.
    bid = PerpQuotes([3001.0], [10.0], [True])
    choice = _venue(2.0, bid, 0.0001, 8.0)
    assert choice.perp_cost == pytest.approx(-6.8, abs=PERP_TOL)
    assert choice.pool_cost == pytest.approx(_one_pool_sale_cost(2), abs=POOL_TOL)
    assert choice.venue == VENUE_PERP and choice.perp_quote == 0
    assert choice.cost == choice.perp_cost
    # Negative funding (-5 bp/h) makes the short pay 2 * 3000 * 0.0005 * 8 = 24 USD: the
    # perp costs -2 + 24 = 22 USD, more than the pools' ~3.01.
    flipped = _venue(2.0, bid, -0.0005, 8.0)
    assert flipped.perp_cost == pytest.approx(22.0, abs=PERP_TOL)
    assert flipped.venue == VENUE_POOLS and flipped.perp_quote == -1
    assert flipped.cost == flipped.pool_cost


def test_a_long_hedge_pays_the_ask_premium_unless_funding_pays_longs():
    # Short 2 WETH of delta: buy 2. An ask 3 USD over the index costs 6 USD: the pools win.
    ask = PerpQuotes([3003.0], [2.0], [False])
    choice = _venue(-2.0, ask, 0.0, 8.0)
    assert choice.perp_cost == pytest.approx(6.0, abs=PERP_TOL)
    assert choice.pool_cost == pytest.approx(_one_pool_purchase_cost(2), abs=POOL_TOL)
    assert choice.venue == VENUE_POOLS
    # At -2 bp/h shorts pay longs 2 * 3000 * 0.0002 * 8 = 9.6 USD: the perp costs -3.6.
    paid = _venue(-2.0, ask, -0.0002, 8.0)
    assert paid.perp_cost == pytest.approx(-3.6, abs=PERP_TOL)
    assert paid.venue == VENUE_PERP and paid.perp_quote == 0


def test_a_quote_too_small_on_the_wrong_side_or_outside_the_band_is_unavailable():
    d = np.array([2.0, 2.0, 2.0, 2.0, -2.0])
    # One quote per account (quote axis of length 1): too small, wrong side, at the band's
    # edge (|X - S| = 0.001 * 3000 = 3, allowed), just outside it (above and below).
    quotes = PerpQuotes(
        price=[[3001.0], [2999.0], [3003.0], [3003.01], [2996.99]],
        size=[[1.999], [10.0], [2.0], [10.0], [10.0]],
        is_bid=[[True], [False], [True], [True], [False]],
    )
    choice = _venue(d, quotes, 0.0, 0.0, band=0.001)
    inf = np.inf
    np.testing.assert_array_equal(choice.perp_cost, [inf, inf, -6.0, inf, inf])
    np.testing.assert_array_equal(choice.venue, [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(choice.perp_quote, [-1, -1, 0, -1, -1])
    np.testing.assert_array_equal(choice.cost[[0, 1, 3, 4]], choice.pool_cost[[0, 1, 3, 4]])


def test_the_cheapest_quote_that_can_carry_the_whole_hedge_is_taken():
    # A shared book: a small rich bid, a deep bid, an ask below the index, a bid outside the
    # 5 bp band (width 1.5 USD). No funding, so each cost is -d (X - S).
    book = PerpQuotes(
        price=[3001.0, 3000.5, 2999.0, 3002.0],
        size=[1.0, 5.0, 10.0, 10.0],
        is_bid=[True, True, False, True],
    )
    got = perp_hedge_cost([2.0, 0.5, -3.0, 0.0, 20.0], S, book, 0.0, 0.0, band=0.0005)
    np.testing.assert_allclose(got.cost, [-1.0, -0.5, -3.0, 0.0, np.inf], rtol=0, atol=PERP_TOL)
    np.testing.assert_array_equal(got.quote, [1, 0, 2, -1, -1])


def test_pools_that_cannot_carry_the_hedge_and_a_tie():
    no_quote = PerpQuotes([3000.0], [0.0], [True])
    # A sale of more than the account holds, a purchase of the whole pool: neither venue.
    choice = _venue([2.0, -1_000_000.0], no_quote, 0.0, 1.0, held=[1.0, 0.0])
    np.testing.assert_array_equal(choice.pool_cost, [np.inf, np.inf])
    np.testing.assert_array_equal(choice.venue, [VENUE_NONE, VENUE_NONE])
    np.testing.assert_array_equal(choice.cost, [np.inf, np.inf])
    # The perp carries what the pools cannot (the engine has no short underlying).
    bid = PerpQuotes([2999.0], [5.0], [True])
    short = _venue(2.0, bid, 0.0, 1.0, held=1.0)
    assert short.venue == VENUE_PERP and short.perp_cost == pytest.approx(2.0, abs=PERP_TOL)
    # A zero delta costs nothing anywhere: a tie, which goes to the pools.
    zero = _venue(0.0, bid, 0.01, 24.0)
    assert zero.venue == VENUE_POOLS and zero.cost == 0.0 and zero.perp_quote == -1


@settings(max_examples=60, deadline=None)
@given(delta=st.floats(-150.0, 150.0), held=st.floats(0.0, 200.0))
def test_pool_cost_is_the_cost_of_the_order_plan_hedge_sends(delta, held):
    cost = float(pool_hedge_cost(delta, S, RU, RC, FEES, underlying_held=held))
    if delta > held:  # plan_hedge would clip the sale: the pools cannot carry the hedge
        assert cost == np.inf
        return
    order = plan_hedge(delta, held, RU, RC, FEES)
    if order is None:  # a delta below one wei (or zero)
        assert cost == pytest.approx(0.0, abs=1e-9)
        return
    assert not order.clipped
    if order.buy_underlying:
        planned = order.amount_in / E6 - round(-delta * E18) / E18 * S
    else:
        planned = order.amount_in / E18 * S - order.expected_out / E6
    # plan_hedge's integer rounding: the cash input rounded up (< 1 cash unit) and topped up
    # for the floored leg outputs (2 units), or the 3 legs' outputs floored (< 3 units); plus
    # float error on sums of up to ~5e5 USD (~1e-10). Seen over 2,000 draws: 2.84e-6.
    assert cost == pytest.approx(planned, abs=3e-6 + 1e-9)


accounts = st.lists(
    st.tuples(
        st.one_of(st.just(0.0), st.floats(-60.0, 60.0)),  # net delta
        st.floats(0.0, 80.0),  # underlying held
        st.floats(-0.02, 0.02),  # the quote's premium (X - S) / S
        st.floats(0.0, 80.0),  # its size
        st.booleans(),  # is it a bid
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=80, deadline=None)
@given(
    rows=accounts,
    spot=st.floats(2900.0, 3100.0),
    rate=st.floats(-0.01, 0.01),
    hours=st.floats(0.0, 48.0),
)
def test_the_chosen_venue_costs_the_minimum_of_the_two(rows, spot, rate, hours):
    d, held, premium, size, bid = (np.array(c) for c in zip(*rows, strict=True))
    quotes = PerpQuotes((spot * (1.0 + premium))[:, None], size[:, None], bid[:, None])
    args = (RU, RC, FEES, quotes, rate, hours, 0.01)
    choice = hedge_venue(d, spot, *args, underlying_held=held)
    np.testing.assert_array_equal(choice.cost, np.minimum(choice.pool_cost, choice.perp_cost))
    perp = choice.perp_cost < choice.pool_cost
    none = np.isinf(choice.pool_cost) & np.isinf(choice.perp_cost)
    np.testing.assert_array_equal(choice.venue == VENUE_PERP, perp)
    np.testing.assert_array_equal(choice.venue == VENUE_NONE, none)
    np.testing.assert_array_equal(choice.venue == VENUE_POOLS, ~perp & ~none)
    chosen = np.where(choice.venue == VENUE_PERP, choice.perp_cost, choice.pool_cost)
    np.testing.assert_array_equal(chosen, choice.cost)
    np.testing.assert_array_equal(choice.perp_quote, np.where(perp, 0, -1))
    # The batch agrees with one account at a time. The pool bisection runs until every row
    # of the batch has converged, so a row may be narrowed further than alone: 1e-15 of the
    # cash (< 1e5 USD here), i.e. 1e-9 USD.
    for k in range(len(rows)):
        one_quote = PerpQuotes(quotes.price[k], quotes.size[k], quotes.is_bid[k])
        one = hedge_venue(d[k], spot, RU, RC, FEES, one_quote, rate, hours, 0.01, held[k])
        assert one.venue == choice.venue[k]
        assert one.perp_cost == choice.perp_cost[k]
        assert one.pool_cost == pytest.approx(choice.pool_cost[k], abs=1e-9)


def test_bad_input_is_refused():
    q = PerpQuotes([3000.0], [1.0], [True])
    with pytest.raises(ValueError, match="net_delta"):
        perp_hedge_cost(np.nan, S, q, 0.0, 1.0, 0.01)
    with pytest.raises(ValueError, match="spot"):
        pool_hedge_cost(1.0, 0.0, DEEP_U, DEEP_C, DEEP_FEE)
    with pytest.raises(ValueError, match="holding_hours"):
        perp_hedge_cost(1.0, S, q, 0.0, -1.0, 0.01)
    with pytest.raises(ValueError, match="band"):
        perp_hedge_cost(1.0, S, q, 0.0, 1.0, 1.5)
    with pytest.raises(ValueError, match="quote axis"):
        perp_hedge_cost(1.0, S, PerpQuotes(3000.0, 1.0, True), 0.0, 1.0, 0.01)
    with pytest.raises(ValueError, match="underlying_held"):
        pool_hedge_cost(1.0, S, DEEP_U, DEEP_C, DEEP_FEE, underlying_held=-1.0)
