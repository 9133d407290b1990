"""black76.vy: domain reverts, degenerate inputs, no-arbitrage bounds, worked examples."""

from __future__ import annotations

import boa
import pytest

from tests import mp_reference as ref

WAD = 10**18
MAX_PRICE = 10**36
YEAR = WAD


def price_tolerance(forward: int) -> float:
    """The issue's price goal: 1e-15 * F + 10 wei."""
    return 1e-15 * forward + 10


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((0, WAD, YEAR, WAD), "black76: forward out of range"),
        ((MAX_PRICE + 1, WAD, YEAR, WAD), "black76: forward out of range"),
        ((WAD, 0, YEAR, WAD), "black76: strike out of range"),
        ((WAD, MAX_PRICE + 1, YEAR, WAD), "black76: strike out of range"),
        ((WAD, WAD, 10 * YEAR + 1, WAD), "black76: tau out of range"),
        ((WAD, WAD, YEAR, 10 * WAD + 1), "black76: sigma out of range"),
    ],
)
def test_black76_domain_reverts(lens, args, reason):
    for is_call in (True, False):
        with boa.reverts(reason):
            lens.price(*args, is_call)
        with boa.reverts(reason):
            lens.greeks(*args, is_call)


@pytest.mark.parametrize(("forward", "strike"), [(110 * WAD, 100 * WAD), (90 * WAD, 100 * WAD)])
def test_zero_tau_or_sigma_gives_intrinsic_value_and_payoff_greeks(lens, forward, strike):
    for tau, sigma in ((0, WAD), (YEAR, 0), (1, 1)):  # the last: v = sigma*sqrt(tau) rounds to 0
        call = lens.greeks(forward, strike, tau, sigma, True)
        put = lens.greeks(forward, strike, tau, sigma, False)
        assert call.price == max(forward - strike, 0)
        assert put.price == max(strike - forward, 0)
        assert call.delta == (WAD if forward > strike else 0)
        assert put.delta == (0 if forward > strike else -WAD)
        assert (call.gamma, call.vega, call.theta) == (0, 0, 0)
        assert lens.price(forward, strike, tau, sigma, True) == call.price


def test_at_the_money_expiry_delta_is_one_half(lens):
    assert lens.greeks(WAD, WAD, 0, WAD, True).delta == WAD // 2
    assert lens.greeks(WAD, WAD, 0, WAD, False).delta == -WAD // 2


def test_worked_example_eth_call(lens):
    # F = 3000, K = 3200, 3 months, 60% vol. Reference: mpmath closed form.
    forward, strike, tau, sigma = 3000 * WAD, 3200 * WAD, YEAR // 4, 6 * WAD // 10
    exact = ref.black76(forward, strike, tau, sigma, True)
    g = lens.greeks(forward, strike, tau, sigma, True)
    assert abs(g.price - exact["price"]) <= price_tolerance(forward)
    assert g.price // 10**12 == 278_082753  # mpmath: 278.0827533443770...
    tol = ref.greeks_tolerance(forward, tau, sigma, exact)
    for name in ("delta", "gamma", "vega", "theta"):
        assert abs(getattr(g, name) - exact[name]) <= tol[name], name


def test_put_call_parity_exact_to_rounding(lens):
    for forward, strike in ((3000 * WAD, 3200 * WAD), (WAD, 10**9), (10**30, 10**33)):
        call = lens.price(forward, strike, YEAR // 2, WAD // 2, True)
        put = lens.price(forward, strike, YEAR // 2, WAD // 2, False)
        assert abs((call - put) - (forward - strike)) <= price_tolerance(max(forward, strike))


def test_deep_out_of_the_money_is_tiny_not_negative(lens):
    # ln(K/F) = 13.8, v = 0.1: d1 = -138, far beyond saturation.
    assert lens.price(WAD, 10**24, YEAR // 100, WAD, True) == 0
    assert lens.price(10**24, WAD, YEAR // 100, WAD, False) == 0


def test_deep_in_the_money_equals_intrinsic(lens):
    assert lens.price(10**24, WAD, YEAR // 100, WAD, True) == 10**24 - WAD
    assert lens.price(WAD, 10**24, YEAR // 100, WAD, False) == 10**24 - WAD


def test_extreme_moneyness_does_not_lose_the_log(lens):
    # F / K = 1e-36 and 1e36: the log-moneyness input still has 36 digits.
    assert lens.price(1, MAX_PRICE, 10 * YEAR, 10 * WAD, True) <= 1
    assert lens.price(MAX_PRICE, 1, 10 * YEAR, 10 * WAD, False) <= 1
    huge = lens.price(MAX_PRICE, MAX_PRICE, 10 * YEAR, 10 * WAD, True)
    assert abs(huge - ref.black76(MAX_PRICE, MAX_PRICE, 10 * YEAR, 10 * WAD, True)["price"]) <= (
        price_tolerance(MAX_PRICE)
    )


def test_price_bounded_by_forward_at_huge_vol(lens):
    # v = 31.6: the call is worth F up to 1e-54 relative; the clamp keeps it <= F.
    value = lens.price(100 * WAD, 100 * WAD, 10 * YEAR, 10 * WAD, True)
    assert value <= 100 * WAD
    assert 100 * WAD - value <= 10
