"""keeper.black76: Black-76 Greeks and portfolio aggregation (fast, numpy only).

Exactness against mpmath lives in tests/differential/test_black76_mpmath.py; here: finite
differences, put-call parity, the domain rules, scalar/array consistency and aggregation.
Implied vol is tests/unit/keeper/test_implied_vol.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings

from keeper.black76 import Greeks, black76, portfolio_greeks
from tests.conftest import scaled
from tests.strategies import BAD_FORWARD_STRIKE, EPS, options, random_book

# ---------------------------------------------------------------------------------------------
# Known values


def test_textbook_values():
    """F=105, K=100, tau=1, sigma=20%: values from the closed forms (50-digit mpmath, rounded)."""
    call = black76(105.0, 100.0, 1.0, 0.2, True)
    put = black76(105.0, 100.0, 1.0, 0.2, False)
    expected_call = (10.905593471555, 0.63455836433408, 0.017906132008198, 39.483021078078,
                     -3.9483021078078, -0.27064825208167, 9.7744172887556)  # fmt: skip
    for got, want in zip(call, expected_call, strict=True):
        assert float(got) == pytest.approx(want, rel=1e-12)
    assert float(put.price) == pytest.approx(5.905593471555, rel=1e-12)
    assert float(put.delta) == pytest.approx(0.63455836433408 - 1.0, rel=1e-12)
    assert isinstance(call, Greeks) and call.price.shape == ()


# ---------------------------------------------------------------------------------------------
# Finite differences and parity


@settings(max_examples=scaled(150))
@given(options())
def test_greeks_match_central_finite_differences(option):
    forward, strike, tau, sigma, is_call = option
    g = black76(*option)

    def price(f=forward, t=tau, v=sigma):
        return float(black76(f, strike, t, v, is_call).price)

    def delta(v=sigma):
        return float(black76(forward, strike, tau, v, is_call).delta)

    def delta_f(f):
        return float(black76(f, strike, tau, sigma, is_call).delta)

    def vega(v=sigma):
        return float(black76(forward, strike, tau, v, is_call).vega)

    # Central differences: truncation ~ h^2 f''' / 6, rounding ~ eps f / h. Prices vary with F
    # on the scale F s (s = sigma sqrt(tau)), and with sigma and tau on their own scale.
    s = sigma * math.sqrt(tau)
    hf, ht, hv = 1e-3 * forward * min(s, 1.0), 1e-4 * tau, 1e-4 * sigma
    checks = {
        "delta": (g.delta, (price(f=forward + hf) - price(f=forward - hf)) / (2 * hf), forward),
        "vega": (g.vega, (price(v=sigma + hv) - price(v=sigma - hv)) / (2 * hv), sigma),
        "theta": (g.theta, -(price(t=tau + ht) - price(t=tau - ht)) / (2 * ht), tau),
        "gamma": (g.gamma, (delta_f(forward + hf) - delta_f(forward - hf)) / (2 * hf), forward),
        "vanna": (g.vanna, (delta(sigma + hv) - delta(sigma - hv)) / (2 * hv), sigma),
        "volga": (g.volga, (vega(sigma + hv) - vega(sigma - hv)) / (2 * hv), sigma),
    }
    scale = forward * math.sqrt(tau) / sigma  # ~ the largest price sensitivity to sigma^2
    for name, (exact, fd, var) in checks.items():
        tol = 1e-5 * abs(float(exact)) + 1e-9 * (forward + scale) / var
        assert abs(float(exact) - fd) <= tol, (name, float(exact), fd)


@settings(max_examples=scaled(200))
@given(options(z_max=8.0))
def test_put_call_parity(option):
    forward, strike, tau, sigma, _ = option
    call = black76(forward, strike, tau, sigma, True)
    put = black76(forward, strike, tau, sigma, False)
    assert float(call.price - put.price) == pytest.approx(
        forward - strike, abs=4 * EPS * max(forward, strike)
    )
    assert float(call.delta - put.delta) == pytest.approx(1.0, abs=4 * EPS)
    for name in ("gamma", "vega", "theta", "vanna", "volga"):
        assert getattr(call, name) == getattr(put, name), name


def test_prices_respect_the_no_arbitrage_bounds():
    forward, strike, tau, sigma, is_call = random_book(50_000, 1, z_max=10.0)
    g = black76(forward, strike, tau, sigma, is_call)
    intrinsic = np.maximum(np.where(is_call, forward - strike, strike - forward), 0.0)
    upper = np.where(is_call, forward, strike)
    assert np.all(g.price >= intrinsic) and np.all(g.price <= upper)
    assert np.all(np.abs(g.delta) <= 1) and np.all(g.gamma >= 0) and np.all(g.vega >= 0)
    assert np.all(g.theta <= 0)


# ---------------------------------------------------------------------------------------------
# Shapes, scalars and the domain


def test_array_and_scalar_calls_agree_exactly():
    book = random_book(300, 2)
    arrays = black76(*book)
    for i in range(0, 300, 37):
        single = black76(*(v[i] for v in book))
        for got, want in zip(single, arrays, strict=True):
            assert float(got) == want[i]


def test_broadcasting():
    forward = np.array([[90.0], [100.0], [110.0]])
    strike = np.array([95.0, 100.0, 105.0, 110.0])
    g = black76(forward, strike, 0.5, 0.3, [True, False, True, False])
    assert all(field.shape == (3, 4) for field in g)
    assert g.price[1, 2] == black76(100.0, 105.0, 0.5, 0.3, True).price
    assert g.price.dtype == np.float64


def test_many_blocks_match_one_at_a_time():
    book = random_book(70_001, 3)  # more than two blocks, with a ragged last one
    whole = black76(*book)
    head = black76(*(v[:5] for v in book))
    tail = black76(*(v[-5:] for v in book))
    for w, h, t in zip(whole, head, tail, strict=True):
        assert np.array_equal(w[:5], h) and np.array_equal(w[-5:], t)


@pytest.mark.parametrize("tau, sigma", [(0.0, 0.3), (-1.0, 0.3), (0.5, 0.0), (0.5, -0.2)])
def test_expired_or_zero_vol_gives_the_payoff(tau, sigma):
    forward = np.array([90.0, 100.0, 110.0, 90.0, 100.0, 110.0])
    is_call = np.array([True, True, True, False, False, False])
    g = black76(forward, 100.0, tau, sigma, is_call)
    np.testing.assert_array_equal(g.price, [0.0, 0.0, 10.0, 10.0, 0.0, 0.0])
    np.testing.assert_array_equal(g.delta, [0.0, 0.5, 1.0, -1.0, -0.5, 0.0])
    for name in ("gamma", "vega", "theta", "vanna", "volga"):
        np.testing.assert_array_equal(getattr(g, name), 0.0)


def test_mixed_live_and_expired_in_one_call():
    tau = np.array([0.5, 0.0, 0.25])
    g = black76(100.0, 95.0, tau, 0.4, True)
    assert g.price[1] == 5.0 and g.delta[1] == 1.0 and g.gamma[1] == 0.0
    assert g.price[0] == black76(100.0, 95.0, 0.5, 0.4, True).price
    assert g.price[2] == black76(100.0, 95.0, 0.25, 0.4, True).price


def test_nan_vol_propagates():
    g = black76(100.0, 100.0, 0.5, np.nan, True)
    assert all(np.isnan(field) for field in g)


@pytest.mark.parametrize("forward, strike, message", BAD_FORWARD_STRIKE)
def test_bad_forward_or_strike_raise(forward, strike, message):
    with pytest.raises(ValueError, match=message):
        black76(forward, strike, 0.5, 0.3, True)


def test_extreme_moneyness_does_not_overflow():
    g = black76(1e300, 1e-300, 1.0, 0.5, [True, False])
    assert g.price[0] == 1e300 and g.delta[0] == 1.0 and g.price[1] == 0.0
    assert np.all(np.isfinite(np.array(g)))


# ---------------------------------------------------------------------------------------------
# Portfolio aggregation


def test_portfolio_totals_and_groups():
    forward, strike, tau, sigma, is_call = random_book(1_000, 5)
    g = black76(forward, strike, tau, sigma, is_call)
    rng = np.random.default_rng(6)
    sizes = rng.normal(0, 10, 1_000)
    groups = rng.integers(0, 7, 1_000)
    totals = portfolio_greeks(sizes, g)
    by_group = portfolio_greeks(sizes, g, groups, n_groups=9)
    for name in Greeks._fields:
        field = getattr(g, name)
        assert float(getattr(totals, name)) == pytest.approx(np.sum(sizes * field), rel=1e-12)
        expected = [np.sum((sizes * field)[groups == k]) for k in range(9)]
        np.testing.assert_allclose(getattr(by_group, name), expected, rtol=1e-12, atol=1e-9)
    assert by_group.price.shape == (9,)
    assert portfolio_greeks(sizes, g, groups).price.shape == (groups.max() + 1,)


def test_portfolio_scalar_size_and_bad_groups():
    g = black76(100.0, [90.0, 110.0], 0.5, 0.3, True)
    total = portfolio_greeks(2.0, g)
    assert float(total.delta) == pytest.approx(2.0 * float(g.delta.sum()), rel=1e-15)
    with pytest.raises(ValueError, match="non-negative integers"):
        portfolio_greeks(1.0, g, np.array([0, -1]))
    with pytest.raises(ValueError, match="non-negative integers"):
        portfolio_greeks(1.0, g, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="n_groups"):
        portfolio_greeks(1.0, g, np.array([0, 3]), n_groups=2)
