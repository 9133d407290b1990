"""keeper.black76 and keeper.implied_vol against exact closed forms in 40-digit mpmath.

Tolerance for every output: |ours - exact| <= 1e-9 |exact| + 1e-13 * scale, where the scale is
the output's natural size for the option (a bound on its magnitude over moneyness, up to O(1)
factors), with s = sigma sqrt(tau):

    price  F                      (a call is worth at most F)
    delta  1
    gamma  1 / (F s)              (phi(d1) <= phi(0) < 1)
    vega   F sqrt(tau)
    theta  F sigma / sqrt(tau)
    vanna  (1 + s) / sigma        (phi(d1) |d2| <= phi(d1) (|d1| + s))
    volga  F sqrt(tau) (1 + s) / sigma

Implied vol: recovers sigma within 1e-10 absolute wherever |d1| < 4, from the exact (mpmath)
price rounded to a double, so the check includes the problem's conditioning, not just a round
trip through our own pricer. That rounding alone moves sigma by up to eps * price / vega, which
for a deep in-the-money option (intrinsic >> time value) can exceed 1e-10 whatever the solver
does, so the bound checked is 1e-10 + 4 eps price / vega.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings

from keeper.black76 import black76
from keeper.implied_vol import _guess_table, _lbr_guess, _nb, _table_guess, implied_vol
from tests import mp_reference
from tests.conftest import scaled
from tests.strategies import WIDE, options

DPS = 40
EPS = float(np.finfo(np.float64).eps)
NAMES = ("price", "delta", "gamma", "vega", "theta", "vanna", "volga")


def exact(forward: float, strike: float, tau: float, sigma: float, is_call: bool) -> list[mp.mpf]:
    """Black-76 (r = 0) price and Greeks from their closed forms (tests/mp_reference.py), in
    NAMES' order, at DPS digits."""
    with mp.workdps(DPS):
        out = mp_reference.black76_real(forward, strike, tau, sigma, is_call)
        return [out[name] for name in NAMES]


def scales(forward: float, tau: float, sigma: float) -> list[float]:
    s = sigma * math.sqrt(tau)
    vega = forward * math.sqrt(tau)
    return [forward, 1.0, 1.0 / (forward * s), vega, forward * sigma / math.sqrt(tau),
            (1.0 + s) / sigma, vega * (1.0 + s) / sigma]  # fmt: skip


@settings(max_examples=scaled(300))
@given(options(z_max=12.0, ranges=WIDE))
def test_every_greek_matches_the_exact_closed_form(option):
    forward, _, tau, sigma, _ = option
    ours = black76(*option)
    for name, value, ref, scale in zip(
        NAMES, ours, exact(*option), scales(forward, tau, sigma), strict=True
    ):
        err = abs(float(value) - float(ref))
        assert err <= 1e-9 * abs(float(ref)) + 1e-13 * scale, (name, float(value), float(ref))


@settings(max_examples=scaled(100))
@given(options(z_max=30.0, ranges=WIDE))
def test_otm_value_keeps_its_relative_accuracy_deep_in_the_tail(option):
    """The OTM value comes from the small side: no cancellation against F. What is left is the
    difference F N(d1) - K N(d2) = F phi(d1) (R(-d1) - R(-d2)) (R the Mills ratio), whose terms
    exceed it by about (1.25 + |d2|) / s; so the relative error is bounded by that factor times
    ndtr's own relative accuracy (~1e-13 in the far tail). Checked while the value is a normal
    double (> 1e-290 F)."""
    forward, strike, tau, sigma, _ = option
    is_call = strike > forward  # the OTM side
    price = float(black76(forward, strike, tau, sigma, is_call).price)
    ref = float(exact(forward, strike, tau, sigma, is_call)[0])
    s = sigma * math.sqrt(tau)
    d2 = math.log(forward / strike) / s - s / 2
    if ref > 1e-290 * forward:
        assert abs(price / ref - 1) <= 1e-12 * (1 + (1.25 + abs(d2)) / s)


@settings(max_examples=scaled(200))
@given(options(z_max=4.0, ranges=WIDE))
def test_implied_vol_recovers_sigma_from_the_exact_price(option):
    forward, strike, tau, sigma, is_call = option
    s = sigma * math.sqrt(tau)
    d1 = math.log(forward / strike) / s + s / 2
    ref = exact(*option)
    price, vega = float(ref[0]), float(ref[3])
    intrinsic = max((1 if is_call else -1) * (forward - strike), 0.0)
    vol = float(implied_vol(price, forward, strike, tau, is_call))
    conditioning = 4 * EPS * price / vega
    # Where the double price pins sigma down at all (conditioning < 1e-6; deeper in the money the
    # rounded price may even fall outside the bounds, and NaN is the right answer).
    if abs(d1) < 4 and price > intrinsic and conditioning < 1e-6:
        assert abs(vol - sigma) <= 1e-10 + conditioning, (vol, sigma, d1, conditioning)


def test_a_dense_vectorized_sample_against_mpmath():
    """2,000 options in one call (several blocks' worth of shapes), each against mpmath."""
    rng = np.random.default_rng(7)
    n = 2_000
    forward = np.exp(rng.uniform(math.log(1e-2), math.log(1e5), n))
    tau = np.exp(rng.uniform(math.log(1e-4), math.log(10.0), n))
    sigma = np.exp(rng.uniform(math.log(0.01), math.log(3.0), n))
    strike = forward * np.exp(rng.uniform(-8, 8, n) * sigma * np.sqrt(tau))
    is_call = rng.random(n) < 0.5
    ours = np.array(black76(forward, strike, tau, sigma, is_call))
    for i in range(n):
        args = (forward[i], strike[i], tau[i], sigma[i], bool(is_call[i]))
        ref = np.array([float(v) for v in exact(*args)])
        tol = 1e-9 * np.abs(ref) + 1e-13 * np.array(scales(forward[i], tau[i], sigma[i]))
        assert np.all(np.abs(ours[:, i] - ref) <= tol), i


def test_near_the_money_log_moneyness_keeps_relative_accuracy():
    """F and K one ulp apart with a tiny s: d1 and d2 come from x = ln(F/K) ~ 1e-16, which must
    be accurate relative to itself (the found-by-Hypothesis case of a vanna off by 7e-9)."""
    option = (math.exp(2.0), 7.389056099039355, math.exp(-6.0), math.exp(-6.0), False)
    forward, _, tau, sigma, _ = option
    for name, value, ref, scale in zip(
        NAMES, black76(*option), exact(*option), scales(forward, tau, sigma), strict=True
    ):
        assert abs(float(value) - float(ref)) <= 1e-9 * abs(float(ref)) + 1e-13 * scale, name


def _normalized_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x <= 0, s, beta) for listed-chain-like options, normalized to the OTM call."""
    rng = np.random.default_rng(seed)
    s = np.exp(rng.uniform(math.log(0.005), math.log(3.0), n))
    x = -np.abs(s * rng.uniform(-4.0, 4.0, n))
    ex2 = np.exp(0.5 * x)
    beta = _nb(x, s, ex2, 1.0 / ex2)
    keep = beta > 0
    return x[keep], s[keep], beta[keep]


def test_the_guess_table_is_as_close_as_documented():
    """The bilinear guess is within 1e-4 of the root for the median option and 2e-3 at worst
    (documented: ~3e-5 and 6e-4), so one Householder step lands below ~1e-14 for nearly all."""
    x, s, beta = _normalized_sample(50_000, 8)
    guess, inside = _table_guess(beta, x, _guess_table())
    err = np.abs(guess / s - 1)
    assert inside.all()
    assert np.median(err) < 1e-4 and err.max() < 2e-3


def test_lets_be_rational_guess_matches_the_reference_implementation():
    """The vectorized Let's Be Rational guess (used outside the table and to build it) equals
    py_lets_be_rational's scalar one with zero iterations."""
    reference = pytest.importorskip("py_lets_be_rational.lets_be_rational")
    x, _, beta = _normalized_sample(400, 9)
    ours, _, _ = _lbr_guess(beta, x)
    theirs = [
        reference.normalised_implied_volatility_from_a_transformed_rational_guess_with_limited_iterations(
            b, xx, 1, 0
        )
        for b, xx in zip(beta.tolist(), x.tolist(), strict=True)
    ]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
