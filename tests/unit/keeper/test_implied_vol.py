"""keeper.implied_vol: round trips through keeper.black76, the corners of the domain and the
no-arbitrage bounds (fast, numpy only). Exactness against mpmath lives in
tests/differential/test_black76_mpmath.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings

from keeper.black76 import black76
from keeper.implied_vol import implied_vol
from tests.conftest import scaled
from tests.strategies import BAD_FORWARD_STRIKE, EPS, options, random_book

# ---------------------------------------------------------------------------------------------
# Implied volatility


def d1_of(forward, strike, tau, sigma):
    s = sigma * np.sqrt(tau)
    return np.log(forward / strike) / s + 0.5 * s


@settings(max_examples=scaled(300))
@given(options(z_max=4.5))
def test_implied_vol_round_trip(option):
    forward, strike, tau, sigma, is_call = option
    g = black76(*option)
    vol = float(implied_vol(g.price, forward, strike, tau, is_call))
    # eps price / vega: what rounding the price to a double does to sigma (deep ITM).
    conditioning = 4 * EPS * float(g.price) / float(g.vega)
    if abs(d1_of(forward, strike, tau, sigma)) < 4 and conditioning < 1e-6:
        assert abs(vol - sigma) <= 1e-10 + conditioning


def test_implied_vol_on_a_large_book():
    """200,000 options in one vectorized call; |d1| < 4 ones recover sigma within 1e-10."""
    forward, strike, tau, sigma, is_call = random_book(200_000, 4, z_max=5.0)
    g = black76(forward, strike, tau, sigma, is_call)
    vol = implied_vol(g.price, forward, strike, tau, is_call)
    core = np.abs(d1_of(forward, strike, tau, sigma)) < 4
    bound = 1e-10 + 4 * EPS * g.price / g.vega
    assert core.mean() > 0.7
    assert np.all(np.abs(vol - sigma)[core] <= bound[core])
    assert not np.isnan(vol).any()


@pytest.mark.parametrize(
    "forward, strike, tau, sigma",
    [
        (1.0, math.exp(-60.0), 1.0, 9.0),  # |x| = 60: outside the guess table
        (1.0, math.exp(70.0), 2.0, 8.0),
        (100.0, 100.0 * (1 + 1e-13), 1.0, 0.3),  # |x| ~ 1e-13: clamped to the table's edge
        (100.0, 100.0, 1.0, 0.3),  # x = 0
        (100.0, 100.0, 1e-6, 0.05),  # s = 5e-5
        (100.0, 130.0, 0.02, 0.05),  # deep OTM, low vol: price ~1e-180 F
        (100.0, 100.0, 4.0, 4.0),  # s = 8: price within 1e-4 of F
    ],
)
def test_implied_vol_in_the_corners(forward, strike, tau, sigma):
    g = black76(forward, strike, tau, sigma, strike >= forward)
    assert g.price > 0
    vol = float(implied_vol(g.price, forward, strike, tau, strike >= forward))
    assert vol == pytest.approx(sigma, rel=1e-9)


def test_implied_vol_outside_the_bounds_is_nan():
    forward, strike, tau = 100.0, 90.0, 0.5
    cases = [
        (9.999, True),  # call below intrinsic 10
        (100.0, True),  # call at F
        (101.0, True),  # above F
        (-1.0, False),  # negative put price
        (90.0, False),  # put at K
        (np.nan, True),
        (np.inf, True),
    ]
    prices = np.array([p for p, _ in cases])
    calls = np.array([c for _, c in cases])
    assert np.isnan(implied_vol(prices, forward, strike, tau, calls)).all()


def test_implied_vol_at_intrinsic_is_zero_and_bad_tau_is_nan():
    assert implied_vol(10.0, 100.0, 90.0, 0.5, True) == 0.0
    assert implied_vol(0.0, 100.0, 110.0, 0.5, True) == 0.0
    vols = implied_vol(5.0, 100.0, 100.0, np.array([0.0, -1.0, np.nan, np.inf]), True)
    assert np.isnan(vols).all()


def test_implied_vol_shapes_and_scalars():
    price = black76(100.0, np.array([[90.0], [110.0]]), 0.5, 0.3, [True, False, True]).price
    vols = implied_vol(price, 100.0, np.array([[90.0], [110.0]]), 0.5, [True, False, True])
    assert vols.shape == (2, 3)
    np.testing.assert_allclose(vols, 0.3, rtol=0, atol=1e-13)
    assert implied_vol(price[0, 0], 100.0, 90.0, 0.5, True).shape == ()


@pytest.mark.parametrize("forward, strike, message", BAD_FORWARD_STRIKE)
def test_bad_forward_or_strike_raise(forward, strike, message):
    with pytest.raises(ValueError, match=message):
        implied_vol(1.0, forward, strike, 0.5, True)
