"""The health floor never exceeds the health, at the edges where it is nearly tight.

The differential test checks `health_floor <= H` on market-like portfolios, where the floor is
far below H. Here the portfolios are drawn to press the bound: strikes down to a tenth and up
to ten times spot, vols up to 10 and tenors up to two years (so a call's price nears its
forward), reference vols that clamp the spot shock to u_max (so the grid reaches the floor's
spots, where a perp's bound is attained), expired positions with settlement prices above the
shocked spot, perps of either sign, odd wei everywhere, and both modes. A floor above H would
let a fill or a bid through below initial margin.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests import protocol as P  # noqa: N812
from tests import risk_inputs as R  # noqa: N812
from tests.conftest import scaled

WAD = 10**18
NOW = 1_699_999_200  # on the hour grid, as every series expiry
DAY = 86_400


@st.composite
def edge_case(draw):
    spot = draw(st.integers(100 * WAD, 10_000 * WAD))
    positions = []
    for _ in range(draw(st.integers(1, 6))):
        strike = spot * draw(st.integers(100, 10_000)) // 1_000 + draw(st.integers(0, 999))
        expired = draw(st.integers(0, 4)) == 0
        if expired:
            expiry = NOW - 3_600 * draw(st.integers(0, 30 * 24))
            settlement = draw(st.sampled_from([0, spot * draw(st.integers(500, 3_000)) // 1_000]))
            sigma = 0
        else:
            expiry = NOW + 3_600 * draw(st.integers(1, 730 * 24))
            settlement = 0
            sigma = draw(st.integers(WAD // 100, 10 * WAD))
        size = draw(st.integers(WAD // 100, 100 * WAD)) * draw(st.sampled_from([-1, -1, 1]))
        positions.append(
            R.position(strike, expiry, draw(st.booleans()), size, sigma, settlement, NOW)
        )
    cash = draw(st.integers(-(10**6) * WAD, 10**7 * WAD))
    underlying = draw(st.integers(0, 1_000 * WAD))
    confidence = draw(st.integers(WAD // 2, WAD))
    sigma_ref = draw(st.sampled_from([5 * WAD, draw(st.integers(WAD // 100, 10 * WAD))]))
    perp = R.NO_PERP
    if draw(st.booleans()):
        perp = (
            draw(st.integers(1, 100 * WAD)) * draw(st.sampled_from([-1, 1])),
            spot * draw(st.integers(500, 2_000)) // 1_000 + draw(st.integers(0, 999)),
            draw(st.integers(-(10**4) * WAD, 10**4 * WAD)),
        )
    portfolio = R.portfolio(cash, underlying, positions, perp)
    return portfolio, R.market(spot, confidence, NOW, sigma_ref)


@settings(max_examples=scaled(40), deadline=None)
@given(case=edge_case())
def test_health_floor_never_exceeds_health(calc, case):
    portfolio, market = case
    for mode in (P.IM, P.MM):
        floor = calc.health_floor(portfolio, market, mode, P.GRID)
        health = calc.health(portfolio, market, mode, P.GRID)[0]
        assert floor <= health
        assert calc.is_healthy(portfolio, market, mode, P.GRID) == (health >= 0)


def test_floor_is_tight_for_a_deep_short_call_at_the_clamped_shock(calc):
    # Short a call struck at a tenth of spot, vol 10 over two years, shock clamped to u_max:
    # in the top spot scenario its price is within a hair of S_hi, which is what the floor
    # charges, so floor and health agree to 1e-12 of the notional (measured: 2.7e-14).
    spot = 3_000 * WAD
    positions = [R.position(spot // 10, NOW + 730 * DAY, True, -5 * WAD, 10 * WAD, 0, NOW)]
    portfolio = R.portfolio(100_000 * WAD, 0, positions)
    market = R.market(spot, WAD, NOW, 5 * WAD)
    floor = calc.health_floor(portfolio, market, P.MM, P.GRID)
    health = calc.health(portfolio, market, P.MM, P.GRID)[0]
    notional = 5 * spot * (WAD + P.GRID[3]) // WAD
    assert 0 <= health - floor <= notional // 10**12
