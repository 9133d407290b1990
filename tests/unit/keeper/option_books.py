"""Option books for the keeper's Black-76 and implied-vol tests: a Hypothesis strategy and a
seeded numpy book, both shaped like a listed chain."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

EPS = float(np.finfo(np.float64).eps)
# (forward, strike, message): inputs outside the domain of black76 and implied_vol alike.
BAD_FORWARD_STRIKE = [
    (0.0, 100.0, "forward must be finite and > 0"),
    (-5.0, 100.0, "forward must be finite and > 0"),
    (np.nan, 100.0, "forward must be finite and > 0"),
    (100.0, 0.0, "strike must be finite and > 0"),
    (100.0, np.inf, "strike must be finite and > 0"),
    (np.array([100.0, -1.0]), 100.0, "forward must be finite and > 0"),
]


def log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(math.log(lo), math.log(hi)).map(math.exp)


@st.composite
def options(draw: st.DrawFn, z_max: float = 3.0) -> tuple[float, float, float, float, bool]:
    """A listed-chain option: strike z in [-z_max, z_max] standard deviations from the forward."""
    forward = draw(log_uniform(1e-2, 1e5))
    tau = draw(log_uniform(1e-3, 5.0))
    sigma = draw(log_uniform(0.02, 3.0))
    z = draw(st.floats(-z_max, z_max))
    strike = forward * math.exp(z * sigma * math.sqrt(tau))
    return forward, strike, tau, sigma, draw(st.booleans())


def random_book(n: int, seed: int, z_max: float = 3.0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    forward = np.exp(rng.uniform(math.log(1e-2), math.log(1e5), n))
    tau = np.exp(rng.uniform(math.log(1e-3), math.log(5.0), n))
    sigma = np.exp(rng.uniform(math.log(0.02), math.log(3.0), n))
    strike = forward * np.exp(rng.uniform(-z_max, z_max, n) * sigma * np.sqrt(tau))
    return forward, strike, tau, sigma, rng.random(n) < 0.5
