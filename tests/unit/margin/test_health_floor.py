"""The health floor (risk.health_floor, RiskCalculator.health_floor / is_healthy): a lower bound
of H_M that needs no vols and no grid, which the engine's and the Liquidator's initial-margin
checks try first.

    floor = C + floor(floor(b S_lo / 1e18) (1 - h) / 1e18) + sum_{q<0} floor(q UB / 1e18)
            + min(V_f(S_lo), V_f(S_hi)) - A_M
    S_lo = floor(S (1 - u_max)), S_hi = floor(S (1 + u_max)),
    UB = max(S_hi, settlement) for a call, K for a put,
    V_f(x) = floor(q_f (x - P_f) / 1e18) - Phi_f (the perp; 0 without one).

The exact values below are that formula evaluated by hand in integers; the bound itself is
checked against the full grid here on edge cases and random portfolios with perps, and in
tests/differential on random portfolios.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import protocol as P  # noqa: N812
from tests import risk_inputs as R  # noqa: N812
from tests.conftest import scaled

WAD = 10**18
NOW = 1_699_999_200  # on the hour grid, as every series expiry
DAY = 86_400
U_MAX = P.GRID[3]


def option(strike, is_call, size, expiry=NOW + 30 * DAY, sigma=6 * WAD // 10, settlement=0):
    return R.position(strike, expiry, is_call, size, sigma, settlement, NOW)


def _floor_div(x: int) -> int:
    return x // WAD  # Python's // is the floor, as the contract's rounding of every term


def _ceil(x: int) -> int:
    return -((-x) // WAD)


def _contingency(positions, spot: int, confidence: int, mode, perp=R.NO_PERP) -> int:
    _, _, a, conf, _, a_perp = mode
    sizes = [R.unpack(p, NOW)[3] for p in positions]
    short = sum(-q for q in sizes if q < 0)
    gross = sum(abs(q) for q in sizes) + abs(perp[0])
    short_term = _ceil(_ceil(short * spot) * a)
    perp_term = _ceil(_ceil(abs(perp[0]) * spot) * a_perp)
    conf_term = _ceil(_ceil(_ceil(gross * spot) * conf) * (WAD - confidence))
    return short_term + perp_term + conf_term


def _perp_value(perp, x: int) -> int:
    size, price, owed = perp
    return _floor_div(size * (x - price)) - owed


def _expected_floor(
    cash: int, underlying: int, positions, spot: int, confidence: int, mode, perp=R.NO_PERP
) -> int:
    haircut = mode[4]
    s_lo = spot * (WAD - U_MAX) // WAD
    s_hi = spot * (WAD + U_MAX) // WAD
    total = cash + _floor_div(_floor_div(underlying * s_lo) * (WAD - haircut))
    for strike, _, is_call, size, settlement in (R.unpack(p, NOW) for p in positions):
        if size < 0:
            bound = max(s_hi, settlement) if is_call else strike
            total += _floor_div(size * bound)
    total += min(_perp_value(perp, s_lo), _perp_value(perp, s_hi))
    return total - _contingency(positions, spot, confidence, mode, perp)


def test_floor_is_exact_and_rounded_for_the_protocol(calc):
    spot = 3_000_123456789012345678
    confidence = 97 * WAD // 100
    cash = 25_000_000000000000000001
    underlying = 2_333333333333333333
    positions = [
        option(3_200 * WAD, True, -1_777777777777777777),
        option(2_800_5 * WAD // 10, False, -2_000000000000000003),
        option(3_500 * WAD, True, 4 * WAD),  # long: counts as worth nothing
        option(2_500 * WAD, False, 1),
    ]
    portfolio = R.portfolio(cash, underlying, positions)
    market = R.market(spot, confidence, NOW, 6 * WAD // 10)
    for mode in (P.IM, P.MM):
        expected = _expected_floor(cash, underlying, positions, spot, confidence, mode)
        assert calc.health_floor(portfolio, market, mode, P.GRID) == expected
        assert expected <= calc.health(portfolio, market, mode, P.GRID)[0]


@pytest.mark.parametrize(
    "perp",
    [
        # Long, settled below spot, owing funding (odd wei everywhere): worst at S_lo.
        (1_777777777777777777, 2_950_000000000000000001, 3_141592653589793239),
        # Short, settled above spot, receiving funding: worst at S_hi.
        (-2_333333333333333333, 3_050_5 * WAD // 10, -1_000000000000000007),
    ],
)
def test_floor_with_a_perp_is_exact_and_bounds_health(calc, perp):
    spot = 3_000_123456789012345678
    confidence = 97 * WAD // 100
    cash = 5_000_000000000000000001
    positions = [option(3_200 * WAD, True, -1_5 * WAD // 10), option(2_800 * WAD, False, WAD)]
    portfolio = R.portfolio(cash, WAD // 3, positions, perp)
    market = R.market(spot, confidence, NOW, 6 * WAD // 10)
    s_lo, s_hi = spot * (WAD - U_MAX) // WAD, spot * (WAD + U_MAX) // WAD
    worst = s_lo if perp[0] > 0 else s_hi
    assert min(_perp_value(perp, s_lo), _perp_value(perp, s_hi)) == _perp_value(perp, worst)
    for mode in (P.IM, P.MM):
        expected = _expected_floor(cash, WAD // 3, positions, spot, confidence, mode, perp)
        assert calc.health_floor(portfolio, market, mode, P.GRID) == expected
        assert calc.contingency(portfolio, market, mode) == _contingency(
            positions, spot, confidence, mode, perp
        )
        assert expected <= calc.health(portfolio, market, mode, P.GRID)[0]


def test_floor_of_a_lone_perp_equals_health_when_the_shock_is_clamped(calc):
    # A perp is linear in the spot: with the shock clamped to u_max the grid's end spots are
    # S_lo and S_hi, so the floor is the health itself, to the wei, for either sign.
    spot = 2_999_999999999999999
    market = R.market(spot, 99 * WAD // 100, NOW, 5 * WAD)
    for perp in ((3 * WAD + 1, 2_900 * WAD + 7, 12_345), (-3 * WAD - 1, 3_100 * WAD - 7, -12_345)):
        portfolio = R.portfolio(20_000 * WAD, 0, [], perp)
        for mode in (P.IM, P.MM):
            floor = calc.health_floor(portfolio, market, mode, P.GRID)
            assert floor == calc.health(portfolio, market, mode, P.GRID)[0]
            assert floor == _expected_floor(20_000 * WAD, 0, [], spot, 99 * WAD // 100, mode, perp)


@st.composite
def perp_case(draw):
    """Options, a perp of either sign settled near spot with funding owed or received, cash of
    either sign and underlying, at a reference vol that may clamp the shock to u_max."""
    spot = draw(st.integers(500 * WAD, 10_000 * WAD))
    positions = []
    for _ in range(draw(st.integers(0, 4))):
        strike = spot * draw(st.integers(500, 2_000)) // 1_000 + draw(st.integers(0, 999))
        sigma = draw(st.integers(WAD // 10, 3 * WAD))
        expiry = NOW + 3_600 * draw(st.integers(1, 180 * 24))
        size = draw(st.integers(WAD // 100, 50 * WAD)) * draw(st.sampled_from([-1, 1]))
        positions.append(R.position(strike, expiry, draw(st.booleans()), size, sigma, 0, NOW))
    size = draw(st.integers(WAD // 100, 100 * WAD)) * draw(st.sampled_from([-1, 1]))
    price = spot * draw(st.integers(900, 1_100)) // 1_000 + draw(st.integers(0, 999))
    owed = draw(st.integers(-1_000 * WAD, 1_000 * WAD))
    portfolio = R.portfolio(
        draw(st.integers(-(10**5) * WAD, 10**6 * WAD)),
        draw(st.integers(0, 100 * WAD)),
        positions,
        (size, price, owed),
    )
    sigma_ref = draw(st.sampled_from([5 * WAD, draw(st.integers(WAD // 10, 3 * WAD))]))
    return portfolio, R.market(spot, draw(st.integers(WAD // 2, WAD)), NOW, sigma_ref)


@settings(max_examples=scaled(30), deadline=None)
@given(case=perp_case())
def test_floor_never_exceeds_health_with_a_perp(calc, case):
    portfolio, market = case
    for mode in (P.IM, P.MM):
        floor = calc.health_floor(portfolio, market, mode, P.GRID)
        assert floor <= calc.health(portfolio, market, mode, P.GRID)[0]


def test_floor_equals_health_of_collateral_when_the_shock_is_clamped(calc):
    # k sigma_ref sqrt(horizon) = 4 * 5 * sqrt(1/365) > u_max: the grid's lowest spot is S_lo,
    # so for cash and underlying alone the floor is the health itself, to the wei.
    spot = 2_999_999999999999999
    portfolio = R.portfolio(-1_000 * WAD - 7, 3 * WAD + 11, [])
    market = R.market(spot, WAD, NOW, 5 * WAD)
    floor = calc.health_floor(portfolio, market, P.IM, P.GRID)
    assert floor == calc.health(portfolio, market, P.IM, P.GRID)[0]
    # An unclamped shock keeps the grid above S_lo: the floor is then strictly lower.
    calm = R.market(spot, WAD, NOW, WAD // 10)
    floor = calc.health_floor(portfolio, calm, P.IM, P.GRID)
    assert floor < calc.health(portfolio, calm, P.IM, P.GRID)[0]


def test_floor_bounds_a_settled_call_by_its_settlement_above_the_shocked_spot(calc):
    spot = 2_000 * WAD
    settlement = 3_500 * WAD  # above S_hi = 3,000
    positions = [option(1_000 * WAD, True, -WAD, expiry=NOW - DAY, sigma=0, settlement=settlement)]
    portfolio = R.portfolio(10_000 * WAD, 0, positions)
    market = R.market(spot, WAD, NOW, 6 * WAD // 10)
    mode = P.MM
    expected = 10_000 * WAD - settlement - _contingency(positions, spot, WAD, mode)
    assert calc.health_floor(portfolio, market, mode, P.GRID) == expected
    # The settled call's liability is settlement - K in every scenario: the floor is below.
    liability = 2_500 * WAD
    contingency = _contingency(positions, spot, WAD, mode)
    assert calc.health(portfolio, market, mode, P.GRID)[0] == 10_000 * WAD - liability - contingency


@pytest.mark.parametrize(
    "cash, floor_ok, healthy",
    [
        (20_000 * WAD, True, True),  # the floor proves it
        (1_500 * WAD, False, True),  # the floor fails, the grid proves it
        (100 * WAD, False, False),  # below initial margin
    ],
)
def test_is_healthy_uses_the_floor_then_the_grid(calc, cash, floor_ok, healthy):
    spot = 3_000 * WAD
    positions = [option(3_300 * WAD, True, -2 * WAD), option(2_700 * WAD, False, -WAD)]
    portfolio = R.portfolio(cash, 0, positions)
    market = R.market(spot, WAD, NOW, 6 * WAD // 10)
    assert (calc.health_floor(portfolio, market, P.IM, P.GRID) >= 0) == floor_ok
    assert (calc.health(portfolio, market, P.IM, P.GRID)[0] >= 0) == healthy
    assert calc.is_healthy(portfolio, market, P.IM, P.GRID) == healthy
