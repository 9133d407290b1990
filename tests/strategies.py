"""The tests' Hypothesis strategies and generated inputs, one home for the property,
differential, fuzz and unit tests: options and option books, portfolios, oracle answers and
fuzz actions' arguments.

Each names its ranges; a test narrows them with arguments rather than writing its own copy.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

EPS = float(np.finfo(np.float64).eps)
WAD = 10**18


def log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Floats spread evenly in log space over [lo, hi] (lo > 0)."""
    return st.floats(math.log(lo), math.log(hi)).map(math.exp)


def log_uniform_int(lo_exp: int, hi_exp: int) -> st.SearchStrategy[int]:
    """Integers spread evenly over orders of magnitude 10**lo_exp .. 10**hi_exp."""
    return st.tuples(st.integers(lo_exp, hi_exp - 1), st.integers(10**15, 10**16 - 1)).map(
        lambda t: t[1] * 10 ** t[0] // 10**15
    )


# ---------------------------------------------------------------------------------------------
# Options (float inputs of keeper/black76.py and keeper/implied_vol.py)

# (forward, tau in years, sigma) ranges: a listed chain, and the whole domain the
# differential tests cover (forward over 9 decades, tau from 5 minutes to 30 years, sigma
# from 0.1% to 500%).
LISTED = ((1e-2, 1e5), (1e-3, 5.0), (0.02, 3.0))
WIDE = ((1e-3, 1e6), (1e-5, 30.0), (1e-3, 5.0))


@st.composite
def options(
    draw: st.DrawFn,
    z_max: float = 3.0,
    ranges: tuple[tuple[float, float], ...] = LISTED,
) -> tuple[float, float, float, float, bool]:
    """(forward, strike, tau, sigma, is_call) log-uniform over `ranges` (LISTED or WIDE), the
    strike z in [-z_max, z_max] standard deviations from the forward."""
    (f_lo, f_hi), (t_lo, t_hi), (s_lo, s_hi) = ranges
    forward = draw(log_uniform(f_lo, f_hi))
    tau = draw(log_uniform(t_lo, t_hi))
    sigma = draw(log_uniform(s_lo, s_hi))
    z = draw(st.floats(-z_max, z_max))
    strike = forward * math.exp(z * sigma * math.sqrt(tau))
    return forward, strike, tau, sigma, draw(st.booleans())


def random_book(n: int, seed: int, z_max: float = 3.0) -> tuple[np.ndarray, ...]:
    """A seeded numpy book of n options over the LISTED ranges (as `options` draws them)."""
    rng = np.random.default_rng(seed)
    (f_lo, f_hi), (t_lo, t_hi), (s_lo, s_hi) = LISTED
    forward = np.exp(rng.uniform(math.log(f_lo), math.log(f_hi), n))
    tau = np.exp(rng.uniform(math.log(t_lo), math.log(t_hi), n))
    sigma = np.exp(rng.uniform(math.log(s_lo), math.log(s_hi), n))
    strike = forward * np.exp(rng.uniform(-z_max, z_max, n) * sigma * np.sqrt(tau))
    return forward, strike, tau, sigma, rng.random(n) < 0.5


# (forward, strike, message): inputs outside the domain of black76 and implied_vol alike.
BAD_FORWARD_STRIKE = [
    (0.0, 100.0, "forward must be finite and > 0"),
    (-5.0, 100.0, "forward must be finite and > 0"),
    (np.nan, 100.0, "forward must be finite and > 0"),
    (100.0, 0.0, "strike must be finite and > 0"),
    (100.0, np.inf, "strike must be finite and > 0"),
    (np.array([100.0, -1.0]), 100.0, "forward must be finite and > 0"),
]


# ---------------------------------------------------------------------------------------------
# Portfolios

# One position of a margin-mirror case: expiry index, log-moneyness, is_call, |size|, long?
mirror_position = st.tuples(
    st.integers(0, 3),
    st.floats(-0.8, 0.8),
    st.booleans(),
    st.floats(0.01, 40),
    st.booleans(),
)
# A whole account and market for keeper/margin.py against the contract (four expiries, one of
# them possibly expired, settled or not).
mirror_case = st.fixed_dictionaries(
    {
        "spot": st.floats(200, 20_000),
        "confidence": st.floats(0.9, 1.0),
        "days": st.lists(st.integers(1, 180), min_size=4, max_size=4, unique=True),
        "expired": st.sampled_from(["none", "unsettled", "settled"]),
        "atm": st.lists(st.floats(0.2, 2.0), min_size=4, max_size=4),
        "skew": st.lists(st.floats(-0.4, 0.4), min_size=4, max_size=4),
        "cash": st.floats(-50_000, 200_000),
        "underlying": st.floats(0, 30),
        "positions": st.lists(mirror_position, min_size=1, max_size=16),
    }
)


# ---------------------------------------------------------------------------------------------
# Token amounts

# Token units spread over 25 orders of magnitude (m * 10**e, m in 1..999, e in 0..24).
token_amounts = st.builds(lambda m, e: m * 10**e, st.integers(1, 999), st.integers(0, 24))


# ---------------------------------------------------------------------------------------------
# Fuzz actions


def order_fields(traders: int) -> dict[str, st.SearchStrategy]:
    """A new order's arguments: maker, taker (the trader `taker` places after the maker: never
    the maker itself), series (index into the live ones), side, size (tenths of a unit) and
    price (USD per unit)."""
    return {
        "maker": st.integers(0, traders - 1),
        "taker": st.integers(1, traders - 1),
        "pick": st.integers(0, 2**16),
        "buy": st.booleans(),
        "size": st.integers(1, 40),
        "price": st.integers(1, 600),
    }
