"""black76 behaviours that mutation testing (tools/mutate.py) showed the other tests leave open.

`price_from_log` (the margin engine's hot path) is called directly through a small harness, and
the documented saturation rule (past |d1| = 9 the tail terms are dropped) is pinned exactly.
"""

from __future__ import annotations

import math

import boa
import pytest

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
