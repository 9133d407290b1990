"""black76 behaviours that mutation testing (tools/mutate.py) showed the other tests leave open.

`price_from_log` (the margin engine's hot path) is called directly through a small harness, and
the documented saturation rule (past |d1| = 9 the tail terms are dropped) is pinned exactly.
"""

from __future__ import annotations

import math

import boa
import pytest

from tests import mp_reference as ref

WAD = 10**18
MAX_PRICE = 10**36

HARNESS = """
# pragma version ~=0.4.3
from contracts.math import black76

@external
@pure
def price_from_log(f: int256, k: int256, ln_fk: int256, v: int256, is_call: bool) -> int256:
    return black76.price_from_log(f, k, ln_fk, v, is_call)

@external
@pure
def log_moneyness(f: int256, k: int256) -> int256:
    return black76.log_moneyness(f, k)
"""


@pytest.fixture(scope="module")
def b76():
    return boa.loads(HARNESS)


def test_zero_total_vol_gives_intrinsic_value(b76):
    for f, k in ((2000 * WAD, 3000 * WAD), (3000 * WAD, 2000 * WAD), (WAD, WAD)):
        ln_fk = b76.log_moneyness(f, k)
        assert b76.price_from_log(f, k, ln_fk, 0, True) == max(f - k, 0)
        assert b76.price_from_log(f, k, ln_fk, 0, False) == max(k - f, 0)


def test_saturated_d1_drops_the_tail_exactly(lens, b76):
    # v = 10 and ln(F/K) = 41: d1 = 41/10 + 10/2 = 9.1 > 9 and d2 = -0.9 < 0. Past |d1| = 9
    # black76 takes e^(-d1^2/2) as 0, so the call is exactly F (the dropped terms are below
    # 3e-18 F; a branch computing them would return F - 0.32 wad here).
    f = MAX_PRICE
    k = int(f / math.exp(41))
    assert lens.price(f, k, WAD, 10 * WAD, True) == f
    assert b76.price_from_log(f, k, b76.log_moneyness(f, k), 10 * WAD, True) == f
    # The put follows by parity: call - F + K = K.
    assert lens.price(f, k, WAD, 10 * WAD, False) == k


@pytest.mark.parametrize(
    ("strike", "is_call"),
    [(2_000, True), (2_000, False), (4_500, True), (4_500, False), (600, True), (12_000, False)],
)
def test_prices_and_greeks_between_one_and_nine_sigma_keep_the_tail(lens, strike, is_call):
    # F = 3000, 0.1 year, 60% vol: d1 is 2.23 (K 2000), -2.04 (K 4500), 8.58 (K 600) and
    # -7.21 (K 12000), inside the band where the Gaussian terms still count (|d1| < 9).
    forward, k, tau, sigma = 3_000 * WAD, strike * WAD, WAD // 10, 6 * WAD // 10
    exact = ref.black76(forward, k, tau, sigma, is_call)
    g = lens.greeks(forward, k, tau, sigma, is_call)
    assert abs(g.price - exact["price"]) <= 1e-15 * forward + 10
    assert abs(lens.price(forward, k, tau, sigma, is_call) - exact["price"]) <= 1e-15 * forward + 10
    tol = ref.greeks_tolerance(forward, tau, sigma, exact)
    for name in ("delta", "gamma", "vega", "theta"):
        assert abs(getattr(g, name) - exact[name]) <= tol[name], name
