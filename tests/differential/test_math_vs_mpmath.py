"""Differential tests of contracts/math against 60-digit mpmath, on Hypothesis-drawn inputs.

Each test draws about 2,000 inputs under the `ci` profile (see tests/conftest.py `scaled`), mixing
uniform draws over the whole domain with draws concentrated where precision is hardest (near 0,
near the saturation thresholds, tiny and huge magnitudes). Tolerances are the precision goals of
issue #2; the docstrings of the modules state the (tighter) bounds measured by bench/math.py.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tests import mp_reference as ref
from tests.conftest import scaled
from tests.strategies import log_uniform_int

WAD = 10**18
EXP_MIN = -42139678854452767622
EXP_MAX = 135305999368893231589
INT_MAX = 2**255 - 1
MANY = scaled(2000)


exp_inputs = st.one_of(
    st.integers(EXP_MIN, EXP_MAX),
    st.integers(-5 * WAD, 5 * WAD),
    st.integers(-(10**6), 10**6),
    st.integers(EXP_MAX - 10**18, EXP_MAX),
    st.integers(EXP_MIN - 10**6, EXP_MIN + 10**18),
)
ln_inputs = st.one_of(
    st.integers(1, INT_MAX),
    st.integers(1, 10**6),
    st.integers(WAD - 10**12, WAD + 10**12),
    log_uniform_int(0, 76),
)
normal_inputs = st.one_of(
    st.integers(-10 * WAD, 10 * WAD),
    st.integers(-(10**12), 10**12),
    st.integers(8 * WAD, 9 * WAD + 10**6),
    st.integers(-(2**255), INT_MAX),
)


@settings(max_examples=MANY)
@given(x=exp_inputs)
def test_exp_wad_matches_mpmath(lens, x):
    exact = ref.exp(x)
    assert abs(lens.exp_wad(x) - exact) <= exact * 1e-17 + 2


@settings(max_examples=MANY)
@given(x=ln_inputs)
def test_ln_wad_matches_mpmath(lens, x):
    exact = ref.ln(x)
    assert abs(lens.ln_wad(x) - exact) <= abs(exact) * 1e-17 + 2


@settings(max_examples=MANY)
@given(
    x=st.one_of(st.integers(0, (2**256 - 1) // WAD), log_uniform_int(0, 59), st.integers(0, 10**6))
)
def test_sqrt_wad_is_the_exact_floor(lens, x):
    assert lens.sqrt_wad(x) == ref.sqrt(x)


@settings(max_examples=MANY)
@given(x=normal_inputs)
def test_cdf_and_pdf_match_mpmath_within_20_wei(lens, x):
    assert abs(lens.cdf(x) - ref.cdf(x)) <= 20
    assert abs(lens.pdf(x) - ref.pdf(x)) <= 20
    assert lens.cdf(x) + lens.cdf(-x) == WAD if x != -(2**255) else True


@settings(max_examples=MANY)
@given(x=st.integers(EXP_MIN, EXP_MAX - 10**6), step=st.integers(1, 10**6))
def test_exp_wad_is_monotone(lens, x, step):
    assert lens.exp_wad(x) <= lens.exp_wad(x + step)


@settings(max_examples=MANY)
@given(
    x=st.integers(-10 * WAD, 10 * WAD), step=st.one_of(st.integers(1, 10**6), st.integers(1, WAD))
)
def test_cdf_is_monotone(lens, x, step):
    assert lens.cdf(x) <= lens.cdf(x + step)


# Option inputs: forward over 27 orders of magnitude, log-moneyness mostly within +-3 (and out to
# +-8), tau from one second to ten years, sigma from 0.01% to 1000%.
forwards = st.one_of(log_uniform_int(9, 36), st.sampled_from([10**9, WAD, 3000 * WAD, 10**36]))
option_inputs = st.tuples(
    forwards,
    st.one_of(st.floats(-3, 3), st.floats(-8, 8)),
    st.one_of(st.integers(31_709_791_983, 10 * WAD), st.integers(WAD // 365, 2 * WAD)),
    st.one_of(st.integers(10**14, 10 * WAD), st.integers(WAD // 20, 2 * WAD)),
    st.booleans(),
).map(lambda t: (t[0], min(max(int(t[0] * math.exp(t[1])), 1), 10**36), t[2], t[3], t[4]))


@settings(max_examples=MANY)
@given(args=option_inputs)
def test_black76_price_matches_mpmath(lens, args):
    forward, strike, tau, sigma, is_call = args
    exact = ref.black76(forward, strike, tau, sigma, is_call)
    assert abs(lens.price(*args) - exact["price"]) <= 1e-15 * forward + 10


@settings(max_examples=scaled(1000))
@given(args=option_inputs)
def test_black76_greeks_match_mpmath(lens, args):
    forward, strike, tau, sigma, is_call = args
    exact = ref.black76(forward, strike, tau, sigma, is_call)
    g = lens.greeks(*args)
    assert g.price == lens.price(*args)
    if "delta" not in exact:
        return
    tol = ref.greeks_tolerance(forward, tau, sigma, exact)
    for name in ("delta", "gamma", "vega", "theta"):
        assert abs(getattr(g, name) - exact[name]) <= tol[name], name


@settings(max_examples=MANY)
@given(args=option_inputs)
def test_put_call_parity_and_no_arbitrage_bounds(lens, args):
    forward, strike, tau, sigma, _ = args
    call = lens.price(forward, strike, tau, sigma, True)
    put = lens.price(forward, strike, tau, sigma, False)
    assert max(forward - strike, 0) <= call <= forward
    assert max(strike - forward, 0) <= put <= strike
    assert abs((call - put) - (forward - strike)) <= 1e-15 * forward + 20


@settings(max_examples=scaled(300))
@given(
    forward=st.integers(10 * WAD, 10**24),
    moneyness=st.floats(-1, 1),
    tau=st.integers(WAD // 50, 3 * WAD),
    sigma=st.integers(WAD // 10, 2 * WAD),
    is_call=st.booleans(),
)
def test_greeks_agree_with_finite_differences(lens, forward, moneyness, tau, sigma, is_call):
    strike = int(forward * math.exp(moneyness))
    g = lens.greeks(forward, strike, tau, sigma, is_call)

    def p(f=forward, t=tau, s=sigma):
        return lens.price(f, strike, t, s, is_call)

    # Steps small against the scale each Greek varies on (F v for the forward, sigma, tau),
    # so central differences are exact to ~1e-7 relative; contract roundings stay far below.
    v = sigma / WAD * math.sqrt(tau / WAD)
    h = int(forward * v / 1000)
    delta_fd = (p(f=forward + h) - p(f=forward - h)) * WAD / (2 * h)
    assert abs(delta_fd - g.delta) <= 1e-6 * WAD
    gamma_fd = (
        (
            lens.greeks(forward + h, strike, tau, sigma, is_call).delta
            - lens.greeks(forward - h, strike, tau, sigma, is_call).delta
        )
        * WAD
        / (2 * h)
    )
    assert abs(gamma_fd - g.gamma) <= 1e-5 * g.gamma + 1e-9 * WAD * WAD / forward
    hs = sigma // 10**4
    vega_fd = (p(s=sigma + hs) - p(s=sigma - hs)) * WAD / (2 * hs)
    assert abs(vega_fd - g.vega) <= 1e-6 * g.vega + 1e-9 * forward
    ht = tau // 10**4
    theta_fd = -(p(t=tau + ht) - p(t=tau - ht)) * WAD / (2 * ht)
    assert abs(theta_fd - g.theta) <= 1e-6 * abs(g.theta) + 1e-9 * forward
