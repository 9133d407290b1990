"""keeper/hedging.py: the band, the cash-for-underlying inversion and the hedge order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.hedging import cash_for_underlying, delta_ratio, needs_hedge, plan_hedge
from keeper.routing import amount_out, amount_out_exact, optimal_split

E18, E6 = 10**18, 10**6
# Three WETH/USDC pools at 3,000 USD of different depth and fee (as the local deployment).
RU = [2000 * E18, 1000 * E18, 500 * E18]
RC = [2000 * 3000 * E6, 1000 * 3000 * E6, 500 * 3000 * E6]
FEES = [5, 30, 100]


def test_delta_ratio_and_band_are_vectorised():
    ratio = delta_ratio([1.0, -3.0, 0.5, 0.0], [10.0, 10.0, 0.0, 0.0])
    np.testing.assert_allclose(ratio, [0.1, 0.3, 0.0, 0.0])
    assert needs_hedge([1.0, -3.0, 0.1], [10.0, 10.0, 10.0], 0.05).tolist() == [True, True, False]


def test_band_and_gross_are_checked():
    with pytest.raises(ValueError, match="band"):
        needs_hedge([1.0], [1.0], 1.5)
    with pytest.raises(ValueError, match="gross"):
        delta_ratio([1.0], [-1.0])


def test_cash_for_underlying_inverts_the_split_output():
    x = np.array(RC, float)
    y = np.array(RU, float)
    f = np.array(FEES) / 1e4
    targets = np.array([1e15, 5e18, 3e20])
    cash = cash_for_underlying(targets, x, y, f)
    outs = amount_out(optimal_split(cash, x, y, f), x, y, f).sum(axis=-1)
    np.testing.assert_allclose(outs, targets, rtol=1e-12)
    assert np.all(outs >= targets)


def test_cash_for_underlying_refuses_more_than_the_pools_hold():
    with pytest.raises(ValueError, match="exceeds"):
        cash_for_underlying(3600e18, np.array(RC, float), np.array(RU, float), np.array(FEES) / 1e4)


def _exact_out(legs, r_in, r_out):
    return sum(
        amount_out_exact(a, x, y, f) for a, x, y, f in zip(legs, r_in, r_out, FEES, strict=True)
    )


@settings(max_examples=60)
@given(delta=st.floats(-150.0, -1e-3))
def test_a_short_delta_buys_exactly_that_much_underlying(delta):
    order = plan_hedge(delta, 0.0, RU, RC, FEES, slippage=0.01)
    assert order is not None and order.buy_underlying
    assert sum(order.legs) == order.amount_in
    # The exact pool output buys at least the shortfall, and not much more.
    out = _exact_out(order.legs, RC, RU)
    assert out == order.expected_out
    want = round(-delta * E18)
    assert want <= out <= want * (1 + 1e-9) + 10**9
    assert order.min_out == int(np.floor(out * 0.99))
    # The split is optimal: every pool that gets input ends at the same marginal price.
    assert not order.clipped


@settings(max_examples=60)
@given(delta=st.floats(1e-3, 150.0), held=st.floats(0.0, 200.0))
def test_a_long_delta_sells_underlying_up_to_what_is_held(delta, held):
    order = plan_hedge(delta, held, RU, RC, FEES)
    sell = min(delta, held)
    if int(np.floor(sell * E18)) == 0:
        assert order is None
        return
    assert order is not None and not order.buy_underlying
    assert order.amount_in == int(np.floor(sell * E18))
    assert order.clipped == (held < delta)
    assert order.expected_out == _exact_out(order.legs, RU, RC)
    assert order.delta_change == pytest.approx(-sell, rel=1e-12, abs=1e-15)


def test_large_orders_use_every_pool_small_ones_only_the_cheapest():
    big = plan_hedge(-100.0, 0.0, RU, RC, FEES)
    small = plan_hedge(-0.01, 0.0, RU, RC, FEES)
    assert big is not None and small is not None
    assert all(leg > 0 for leg in big.legs)
    assert small.legs[0] == small.amount_in and small.legs[1:] == [0, 0]


def test_zero_delta_needs_no_order_and_bad_input_is_refused():
    assert plan_hedge(0.0, 5.0, RU, RC, FEES) is None
    with pytest.raises(ValueError, match="one entry per pool"):
        plan_hedge(-1.0, 0.0, RU, RC[:2], FEES)
    with pytest.raises(ValueError, match="slippage"):
        plan_hedge(-1.0, 0.0, RU, RC, FEES, slippage=1.5)
    with pytest.raises(ValueError, match="finite"):
        plan_hedge(float("nan"), 0.0, RU, RC, FEES)
