"""The health floor (risk.health_floor, RiskCalculator.health_floor / is_healthy): a lower bound
of H_M that needs no vols and no grid, which the engine's and the Liquidator's initial-margin
checks try first.

    floor = C + floor(floor(b S_lo / 1e18) (1 - h) / 1e18) + sum_{q<0} floor(q UB / 1e18) - A_M
    S_lo = floor(S (1 - u_max)), S_hi = floor(S (1 + u_max)),
    UB = max(S_hi, settlement) for a call, K for a put.

The exact values below are that formula evaluated by hand in integers; the bound itself is
checked against the full grid here on edge cases and in tests/differential on random
portfolios.
"""

from __future__ import annotations

import pytest

from tests import protocol as P  # noqa: N812
from tests import risk_inputs as R  # noqa: N812

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


def _contingency(positions, spot: int, confidence: int, mode) -> int:
    _, _, a, conf, _ = mode
    sizes = [R.unpack(p, NOW)[3] for p in positions]
    short = sum(-q for q in sizes if q < 0)
    gross = sum(abs(q) for q in sizes)
    short_term = _ceil(_ceil(short * spot) * a)
    conf_term = _ceil(_ceil(_ceil(gross * spot) * conf) * (WAD - confidence))
    return short_term + conf_term


def _expected_floor(cash: int, underlying: int, positions, spot: int, confidence: int, mode) -> int:
    haircut = mode[4]
    s_lo = spot * (WAD - U_MAX) // WAD
    s_hi = spot * (WAD + U_MAX) // WAD
    total = cash + _floor_div(_floor_div(underlying * s_lo) * (WAD - haircut))
    for strike, _, is_call, size, settlement in (R.unpack(p, NOW) for p in positions):
        if size < 0:
            bound = max(s_hi, settlement) if is_call else strike
            total += _floor_div(size * bound)
    return total - _contingency(positions, spot, confidence, mode)


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
    portfolio = (cash, underlying, positions)
    market = R.market(spot, confidence, NOW, 6 * WAD // 10)
    for mode in (P.IM, P.MM):
        expected = _expected_floor(cash, underlying, positions, spot, confidence, mode)
        assert calc.health_floor(portfolio, market, mode, P.GRID) == expected
        assert expected <= calc.health(portfolio, market, mode, P.GRID)[0]


def test_floor_equals_health_of_collateral_when_the_shock_is_clamped(calc):
    # k sigma_ref sqrt(horizon) = 4 * 5 * sqrt(1/365) > u_max: the grid's lowest spot is S_lo,
    # so for cash and underlying alone the floor is the health itself, to the wei.
    spot = 2_999_999999999999999
    portfolio = (-1_000 * WAD - 7, 3 * WAD + 11, [])
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
    portfolio = (10_000 * WAD, 0, positions)
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
    portfolio = (cash, 0, positions)
    market = R.market(spot, WAD, NOW, 6 * WAD // 10)
    assert (calc.health_floor(portfolio, market, P.IM, P.GRID) >= 0) == floor_ok
    assert (calc.health(portfolio, market, P.IM, P.GRID)[0] >= 0) == healthy
    assert calc.is_healthy(portfolio, market, P.IM, P.GRID) == healthy
