"""risk.vy behaviours that mutation testing (tools/mutate.py) showed the other tests leave open.

The margin mirror tests compare the contract with keeper/margin.py within 1e-9 relative, which
cannot see a 1-wei rounding change. These tests pin the rounding rules of docs/margin_model.md
to the wei: the MtM of expired positions (exact intrinsic values; every position term rounded
down, floor for negatives), the contingency (every step rounded up), and health() against its
witness scenario for positions whose every product is an exact multiple of 1e18.
"""

from __future__ import annotations

import math

import boa
import pytest

from tests import protocol as P  # noqa: N812
from tests import risk_inputs as R  # noqa: N812

WAD = 10**18
NOW = 1_699_999_200  # on the hour grid, as every series expiry
DAY = 86_400


def position(strike, is_call, size, settlement, expiry=NOW - 3600, sigma=6 * WAD // 10):
    return R.position(strike, expiry, is_call, size, sigma, settlement, NOW)


def test_mtm_of_expired_positions_is_exact_and_floored(calc):
    spot = 3_000_123456789012345678
    market = R.market(spot, WAD, NOW, 6 * WAD // 10)
    cash = -1_234_567890123456789
    underlying = 1_500000000000000001
    settled_call = position(2_900 * WAD, True, -2_333333333333333333, 3_100_000000000000000007)
    live_put = position(3_200 * WAD, False, 1_777777777777777777, 0)  # expired, not settled
    portfolio = R.portfolio(cash, underlying, [settled_call, live_put])
    expected = (
        cash
        + underlying * spot // WAD
        + (-2_333333333333333333 * (200 * WAD + 7)) // WAD  # a short rounds down: floor
        + (1_777777777777777777 * (3_200 * WAD - spot)) // WAD
    )
    assert calc.mtm(portfolio, market) == expected
    # Each term on its own: -466.666...6166 floors to ...617; the put's positive product rounds
    # down.
    settled = calc.mtm(R.portfolio(0, 0, [settled_call]), market)
    assert settled == -466_666666666666666617
    put = calc.mtm(R.portfolio(0, 0, [live_put]), market)
    assert put == (1_777777777777777777 * (3_200 * WAD - spot)) // WAD


def test_mtm_of_whole_units_has_no_rounding(calc):
    market = R.market(2_000 * WAD, WAD, NOW, 6 * WAD // 10)
    short_call = position(1_500 * WAD, True, -3 * WAD, 0)  # worth 500 each at the spot
    assert calc.mtm(R.portfolio(10 * WAD, 0, [short_call]), market) == 10 * WAD - 1_500 * WAD


def _ceil(x: int, d: int = WAD) -> int:
    return -(-x // d)


def test_contingency_is_exact_and_rounded_up(calc):
    spot = 3_000_123456789012345678
    market = R.market(spot, 95 * WAD // 100, NOW, 6 * WAD // 10)
    mode = P.IM  # k, v, a = 2%, conf = 20%, haircut
    sizes = (-2_333333333333333333, 1_777777777777777777, -5 * WAD // 10)
    positions = [position(3_000 * WAD, True, q, 0, expiry=NOW + 7 * DAY) for q in sizes]
    short = -sum(q for q in sizes if q < 0)
    gross = sum(abs(q) for q in sizes)
    short_term = _ceil(_ceil(short * spot) * mode[2])
    conf_term = _ceil(_ceil(_ceil(gross * spot) * mode[3]) * (WAD - market[1]))
    assert calc.contingency(R.portfolio(0, 0, positions), market, mode) == short_term + conf_term


@pytest.mark.parametrize("size", [-2 * WAD, 3 * WAD])
def test_health_is_its_witness_value_minus_contingency_for_whole_units(calc, size):
    # A deep in-the-money call is worth exactly F - K in every scenario (d1 > 9 everywhere),
    # so whole units (short or long) give products that are exact multiples of 1e18: the hot
    # loop's rounding must leave them alone, as the single-scenario path does.
    market = R.market(3_000 * WAD, WAD, NOW, 6 * WAD // 10)
    call = position(WAD, True, size, 0, expiry=NOW + 7 * DAY, sigma=WAD // 10)
    portfolio = R.portfolio(0, 0, [call])
    for mode in (P.IM, P.MM):
        h, w = calc.health(portfolio, market, mode, P.GRID)
        a = calc.contingency(portfolio, market, mode)
        assert h == calc.scenario_value(portfolio, market, mode, P.GRID, w) - a
        points = 2 * P.GRID[0] + 1
        j = w % points
        flat = [
            calc.scenario_value(portfolio, market, mode, P.GRID, s * points + j) for s in range(3)
        ]
        assert flat[0] == flat[1] == flat[2]
        assert w == j  # the first vol state attains the minimum: no state is a wei lower


# check_params: every bound accepted at its edge and refused one wei past it.
MM_BOUNDS = [
    (0, WAD, 20 * WAD),
    (1, 0, WAD),
    (2, 0, WAD // 5),
    (3, 0, WAD),
    (4, 0, WAD // 2),
    (5, 0, WAD // 5),
]
GRID_BOUNDS = [(0, 1, 10), (1, 3600, 30 * DAY), (4, None, WAD), (6, 0, WAD)]


def _check(calc, mm, grid=P.GRID, ref_vol=P.REF_VOL, max_positions=16, im=None):
    return calc.check_params(im or mm, mm, grid, ref_vol, max_positions)


@pytest.mark.parametrize(("field", "low", "high"), MM_BOUNDS)
def test_check_params_mm_bounds_are_inclusive(calc, field, low, high):
    for value, ok in ((low, True), (low - 1, False), (high, True), (high + 1, False)):
        mm = list(P.MM)
        mm[field] = value
        if ok:
            assert _check(calc, tuple(mm)) is True
        else:
            with pytest.raises(boa.BoaError, match="engine: bad params"):
                _check(calc, tuple(mm))


@pytest.mark.parametrize(("field", "low", "high"), GRID_BOUNDS)
def test_check_params_grid_bounds_are_inclusive(calc, field, low, high):
    cases = [(high, True), (high + 1, False)]
    if low is not None:
        cases += [(low, True)] + ([(low - 1, False)] if low > 0 else [])
    for value, ok in cases:
        grid = list(P.GRID)
        grid[field] = value
        if field == 4:  # tau_ref must stay >= tau_floor
            grid[5] = min(grid[5], value)
        if ok:
            assert _check(calc, P.MM, tuple(grid)) is True
        else:
            with pytest.raises(boa.BoaError, match="engine: bad params"):
                _check(calc, P.MM, tuple(grid))


def test_check_params_other_bounds(calc):
    assert _check(calc, P.MM, ref_vol=10**16) is True
    assert _check(calc, P.MM, ref_vol=10 * WAD) is True
    assert _check(calc, P.MM, max_positions=1) is True
    assert _check(calc, P.MM, max_positions=32) is True
    u_equal = (*P.GRID[:2], WAD // 2, WAD // 2, *P.GRID[4:])
    assert _check(calc, P.MM, u_equal) is True  # u_min == u_max is allowed
    tau_equal = (*P.GRID[:4], WAD // 12, WAD // 12, P.GRID[6])
    assert _check(calc, P.MM, tau_equal) is True  # tau_floor == tau_ref is allowed
    bad = [
        {"ref_vol": 10**16 - 1},
        {"ref_vol": 10 * WAD + 1},
        {"max_positions": 0},
        {"max_positions": 33},
        {"grid": (*P.GRID[:2], -1, *P.GRID[3:])},
        {"grid": (*P.GRID[:2], WAD // 2 + 1, WAD // 2, *P.GRID[4:])},
        {"grid": (*P.GRID[:3], WAD * 9 // 10 + 1, *P.GRID[4:])},
        {"grid": (*P.GRID[:5], 0, P.GRID[6])},
        {"grid": (*P.GRID[:4], WAD // 12, WAD // 12 + 1, P.GRID[6])},
    ]
    for kwargs in bad:
        with pytest.raises(boa.BoaError, match="engine: bad params"):
            _check(calc, P.MM, **kwargs)


def test_check_params_im_at_least_mm(calc):
    assert _check(calc, P.MM, im=P.MM) is True  # equal is allowed
    for field in range(len(P.MM)):
        im = list(P.MM)
        # a_perp (the last field) is stored in whole basis points: one less is one bp less.
        im[field] -= 10**14 if field == 5 else 1
        with pytest.raises(boa.BoaError, match="engine: IM weaker than MM"):
            _check(calc, P.MM, im=tuple(im))


def test_check_params_a_perp_in_whole_basis_points(calc):
    for mode in ("mm", "im"):
        mm, im = list(P.MM), list(P.IM)
        (mm if mode == "mm" else im)[5] += 1
        with pytest.raises(boa.BoaError, match="engine: bad params"):
            _check(calc, tuple(mm), im=tuple(im))


def test_greeks_skip_expired_positions_wherever_they_are(calc):
    market = R.market(3_000 * WAD, WAD, NOW, 6 * WAD // 10)
    expired = position(2_900 * WAD, True, 5 * WAD, 0)
    live = position(3_100 * WAD, False, -2 * WAD, 0, expiry=NOW + 30 * DAY)
    alone = calc.greeks(R.portfolio(0, WAD, [live]), market)
    assert calc.greeks(R.portfolio(0, WAD, [expired, live]), market) == alone
    assert calc.greeks(R.portfolio(0, WAD, [live, expired]), market) == alone
    assert alone[0] != WAD  # the live put moves delta off the underlying's 1.0


def test_vol_shock_term_structure_exact(calc):
    # v_M(tau) = min(v_M sqrt(tau_ref / max(tau, tau_floor)), v_max); GRID: tau_ref = 1/12,
    # tau_floor = 1/365, v_max = 1.
    v, grid = P.MM[1], P.GRID
    assert calc.vol_shock(v, grid, WAD // 12) == v  # at tau_ref the shock is v_M itself
    ratio = (WAD // 12) * WAD // (WAD // 3)  # tau = 4 tau_ref: half the shock
    assert calc.vol_shock(v, grid, WAD // 3) == v * math.isqrt(ratio * WAD) // WAD
    floor_ratio = (WAD // 12) * WAD // (WAD // 365)  # below tau_floor: the floor's shock
    expected = min(v * math.isqrt(floor_ratio * WAD) // WAD, WAD)
    assert calc.vol_shock(v, grid, 0) == calc.vol_shock(v, grid, WAD // 365) == expected
    assert calc.vol_shock(WAD, grid, 0) == WAD  # capped at v_max


def test_spot_shock_exact_and_clamped(calc):
    # u_M = clamp(k_M sigma_ref sqrt(horizon / year), u_min, u_max); GRID: one day, [5%, 50%].
    mode, grid = P.MM, P.GRID
    root = math.isqrt((grid[1] * WAD // P.YEAR) * WAD)
    sigma_ref = 6 * WAD // 10
    expected = mode[0] * sigma_ref // WAD * root // WAD
    assert grid[2] < expected < grid[3]  # inside the clamp: the formula itself is pinned
    assert calc.spot_shock(mode, grid, sigma_ref) == expected
    assert calc.spot_shock(mode, grid, WAD // 10) == grid[2]  # small vol: the floor u_min
    assert calc.spot_shock(mode, grid, 10 * WAD) == grid[3]  # huge vol: the cap u_max


def test_health_can_be_set_by_the_flat_vol_state(calc):
    # A long one-week straddle against eight short one-year straddles: the near expiry's vol
    # shock is large (x2 / x0.5) and the far one's small (about 7%), so the value is convex in
    # the vol state and the worst scenario has the flat vol. health() must scan that state too:
    # it equals the lowest of all 21 scenario values, found in the flat block (s = 1).
    market = R.market(3_000 * WAD, WAD, NOW, 6 * WAD // 10)
    near, far = NOW + 7 * DAY, NOW + 365 * DAY
    positions = [
        position(3_000 * WAD, True, 10 * WAD, 0, expiry=near),
        position(3_000 * WAD, False, 10 * WAD, 0, expiry=near),
        position(3_000 * WAD, True, -8 * WAD, 0, expiry=far),
        position(3_000 * WAD, False, -8 * WAD, 0, expiry=far),
    ]
    portfolio = R.portfolio(1_000_000 * WAD, 0, positions)
    points = 2 * P.GRID[0] + 1
    values = [calc.scenario_health(portfolio, market, P.MM, P.GRID, w) for w in range(3 * points)]
    worst = min(values)
    assert values.index(worst) // points == 1  # the flat vol state
    assert sorted(values)[1] - worst > 20 * WAD  # by a margin no rounding can blur
    assert calc.health(portfolio, market, P.MM, P.GRID) == (worst, values.index(worst))


def test_health_of_an_expired_short_is_its_lowest_scenario(calc):
    # An expired, unsettled short put: its intrinsic value at each shocked spot, the same in
    # every vol state, enters exactly the 2n + 1 scenarios of each state and no others.
    market = R.market(3_000 * WAD, WAD, NOW, 6 * WAD // 10)
    portfolio = R.portfolio(10_000 * WAD, 0, [position(3_200 * WAD, False, -WAD, 0)])
    points = 2 * P.GRID[0] + 1
    values = [calc.scenario_health(portfolio, market, P.MM, P.GRID, w) for w in range(3 * points)]
    assert values[:points] == values[points : 2 * points] == values[2 * points :]
    worst = min(values)
    assert calc.health(portfolio, market, P.MM, P.GRID) == (worst, values.index(worst))


def test_reference_vol_is_the_max_atm_vol_in_any_position_order(calc):
    # sigma_ref = max(ref_vol, each live expiry's ATM vol), whatever the order of the positions
    # and however the positions of an expiry are spread among the others (runs of one expiry
    # word are evaluated once).
    near, far = NOW + 7 * DAY, NOW + 14 * DAY
    market = R.market(3_000 * WAD, WAD, NOW, 2 * WAD // 10)

    def at(expiry, sigma, strike=3_000 * WAD):
        return R.position(strike, expiry, True, WAD, sigma, 0, NOW)

    a, a2 = at(near, 5 * WAD // 10), at(near, 5 * WAD // 10, 3_100 * WAD)
    b = at(far, 9 * WAD // 10)
    expired = position(2_900 * WAD, True, WAD, 3_100 * WAD)
    for held in ([a, a2, b, a], [b, a, a2], [a, b, b, a2, expired, a], [expired, a2, a, b]):
        assert calc.reference_vol(R.portfolio(0, 0, held), market) == 9 * WAD // 10
    assert calc.reference_vol(R.portfolio(0, 0, [a, expired, a2]), market) == 5 * WAD // 10
    # A live position handed to the calculator with an empty (zero) entry is still evaluated:
    # the smile clamps its 0 ATM up to vol_min (a stale entry, no markup).
    blank = (a[0], 0)
    assert (
        calc.reference_vol(R.portfolio(0, 0, [blank]), R.market(3_000 * WAD, WAD, NOW, 0)) == 10**15
    )
    assert calc.reference_vol(R.portfolio(0, 0, [blank, blank, a]), market) == 5 * WAD // 10


# The perp: V_f(x) = floor(q_f (x - P_f) / 1e18) - Phi_f in MtM and in every scenario.
PERPS = [
    (1_777777777777777777, 2_950_000000000000000001, 3_141592653589793239),  # long, owes
    (-2_333333333333333333, 3_050_5 * WAD // 10 + 3, -1_000000000000000007),  # short, receives
    (-WAD // 3, 2_999 * WAD, 0),  # short below its price: a gain, floored
]


def _shocked(spot: int, u: int, j: int, n: int) -> int:
    # risk._shocked_spot: m = (j - n) u / n truncated toward zero, S_j = floor(S (1 + m)).
    m = abs(j - n) * u // n * (1 if j >= n else -1)
    return spot * (WAD + m) // WAD


@pytest.mark.parametrize("perp", PERPS)
def test_perp_value_is_floored_in_mtm_and_every_scenario(calc, perp):
    spot = 3_000_123456789012345678
    market = R.market(spot, WAD, NOW, 6 * WAD // 10)
    size, price, owed = perp
    cash = -1_234_567890123456789
    assert calc.mtm(R.portfolio(cash, 0, [], perp), market) == (
        cash + size * (spot - price) // WAD - owed
    )
    # Every scenario (each vol state alike) values the perp at its own spot; H is the lowest
    # minus the contingency, the witness its lowest index.
    n, points = P.GRID[0], 2 * P.GRID[0] + 1
    for mode in (P.IM, P.MM):
        u = calc.spot_shock(mode, P.GRID, 6 * WAD // 10)
        values = []
        for w in range(3 * points):
            x = _shocked(spot, u, w % points, n)
            values.append(cash + size * (x - price) // WAD - owed)
        portfolio = R.portfolio(cash, 0, [], perp)
        got = [calc.scenario_value(portfolio, market, mode, P.GRID, w) for w in range(3 * points)]
        assert got == values
        a = calc.contingency(portfolio, market, mode)
        worst = min(values)
        assert calc.health(portfolio, market, mode, P.GRID) == (worst - a, values.index(worst))


def test_contingency_with_a_perp_is_exact_and_rounded_up(calc):
    spot = 3_000_123456789012345678
    market = R.market(spot, 95 * WAD // 100, NOW, 6 * WAD // 10)
    sizes = (-2_333333333333333333, 1_777777777777777777)
    positions = [position(3_000 * WAD, True, q, 0, expiry=NOW + 7 * DAY) for q in sizes]
    for perp_size in (3_333333333333333333, -3_333333333333333333):
        portfolio = R.portfolio(0, 0, positions, (perp_size, 2_900 * WAD, 5))
        for mode in (P.IM, P.MM):
            short_term = _ceil(_ceil(2_333333333333333333 * spot) * mode[2])
            perp_term = _ceil(_ceil(3_333333333333333333 * spot) * mode[5])
            gross = sum(abs(q) for q in sizes) + abs(perp_size)
            conf_term = _ceil(_ceil(_ceil(gross * spot) * mode[3]) * (WAD - market[1]))
            expected = short_term + perp_term + conf_term
            assert calc.contingency(portfolio, market, mode) == expected


def test_greeks_count_the_perp_in_delta_only(calc):
    market = R.market(3_000 * WAD, WAD, NOW, 6 * WAD // 10)
    live = position(3_100 * WAD, False, -2 * WAD, 0, expiry=NOW + 30 * DAY)
    alone = calc.greeks(R.portfolio(0, WAD, [live]), market)
    perp = (-1_234567890123456789, 2_900 * WAD, 7 * WAD)
    with_perp = calc.greeks(R.portfolio(0, WAD, [live], perp), market)
    assert with_perp == (alone[0] + perp[0], *alone[1:])
