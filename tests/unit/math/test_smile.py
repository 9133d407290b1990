"""contracts/math/smile.vy: the packed VolOracle entry and limits, and the vol formula that the
VolOracle answers with and the RiskCalculator prices with.

- The formula (through PricingLens.smile_sigma) equals its integer statement below on arbitrary
  words, including limits a VolOracle would never hold (vol_min above vol_max) and entries
  "from the future".
- VolOracle.sigma(e, K, F) equals the formula on the oracle's own packed words at ln(F/K) =
  log_moneyness(F, K), to the wei: fresh, stale, clamped at either bound, at the money.
"""

from __future__ import annotations

from typing import Any

import boa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import risk_inputs as R  # noqa: N812
from tests.conftest import load

WAD = 10**18
DAY = 86_400
MASK_64 = 2**64 - 1
MASK_96 = 2**96 - 1


def expected_sigma(entry: int, limits: int, ln_fk: int, now: int) -> int:
    """The module notice's formula in Python integers (truncation toward zero, ceil markup)."""
    atm, skew, updated_at = entry & MASK_96, ((entry >> 96) & MASK_96) - R.SKEW_OFFSET, entry >> 192
    product = skew * ln_fk
    term = abs(product) // WAD * (1 if product >= 0 else -1)
    lo, hi = limits & MASK_64, (limits >> 64) & MASK_64
    heartbeat, markup = (limits >> 128) & MASK_64, limits >> 192
    vol = min(max(atm - term, lo), hi)
    if updated_at > now or now - updated_at > heartbeat:
        vol = min(-(-vol * (WAD + markup) // WAD), hi)
    return vol


@given(
    entry=st.integers(0, 2**256 - 1),
    limits=st.integers(0, 2**256 - 1),
    ln_fk=st.integers(-(84 * WAD), 84 * WAD),
    now=st.integers(0, 2**64),
)
def test_smile_sigma_is_its_formula_on_any_words(lens: Any, entry, limits, ln_fk, now) -> None:
    assert lens.smile_sigma(entry, limits, ln_fk, now) == expected_sigma(entry, limits, ln_fk, now)


def test_smile_pack_layout(lens: Any) -> None:
    # An entry fresh at `now` with skew 0 answers its ATM vol clamped to the limits.
    limits = R.pack_limits(WAD // 20, 3 * WAD, 3600, WAD // 2)
    now = 1_700_000_000
    assert (
        lens.smile_sigma(R.pack_entry(6 * WAD // 10, 0, now), limits, 5 * WAD, now) == 6 * WAD // 10
    )
    assert lens.smile_sigma(R.pack_entry(4 * WAD, 0, now), limits, 0, now) == 3 * WAD
    assert lens.smile_sigma(R.pack_entry(WAD // 100, 0, now), limits, 0, now) == WAD // 20
    # One second past the heartbeat: +50%, rounded up; one second from the future: the same.
    stale = R.pack_entry(WAD // 3, 0, now - 3601)
    assert lens.smile_sigma(stale, limits, 0, now) == -(-(WAD // 3) * 3 // 2)
    assert lens.smile_sigma(R.pack_entry(WAD // 3, 0, now + 1), limits, 0, now) == -(
        -(WAD // 3) * 3 // 2
    )
    assert lens.smile_sigma(R.pack_entry(WAD // 3, 0, now - 3600), limits, 0, now) == WAD // 3


@pytest.fixture(scope="module")
def oracle() -> Any:
    vol = load(
        "contracts/oracle/VolOracle.vy", WAD // 20, 3 * WAD, WAD // 2, 2 * WAD, 3600, WAD // 2
    )
    vol.add_feeder(boa.env.eoa)
    return vol


@pytest.mark.parametrize("skew", [-2 * WAD, -WAD // 7, 0, WAD // 3, 2 * WAD])
@pytest.mark.parametrize("stale", [False, True])
def test_smile_of_the_packed_words_is_the_vol_oracle_sigma(
    lens: Any, oracle: Any, skew, stale
) -> None:
    with boa.env.anchor():
        expiry = boa.env.timestamp + 30 * DAY
        oracle.update(expiry, 7 * WAD // 10, skew)
        if stale:
            boa.env.time_travel(seconds=3601)
        limits, (entry,) = oracle.packed_entries([expiry])
        forward = 3_000_123456789012345678
        # At the money, on both sides, and far enough out that either clamp binds.
        for strike in (forward, 2_500 * WAD, 3_333_333333333333333, 10 * WAD, 10**6 * WAD):
            ln_fk = lens.log_moneyness(forward, strike)
            got = lens.smile_sigma(entry, limits, ln_fk, boa.env.timestamp)
            assert got == oracle.sigma(expiry, strike, forward)
