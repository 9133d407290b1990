"""keeper/margin.py: the margin model's off-chain mirror (docs/margin_model.md).

Expected values come from `reference`, an independent scalar implementation of
docs/margin_model.md in 40-digit mpmath (one loop per scenario and position, sharing no code
with keeper.margin or keeper.black76), plus numbers derived by hand where the model makes them
simple (a cash-only account, the grid, contingencies, which scenario is the worst).
Tolerance against the reference: the mirror's agreement rule, 1e-9 relative + 1e-6 USD
(float64 values of sums of a few dozen terms of size <= 1e6 carry ~1e-10 USD of rounding).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.margin import (
    DOWN,
    FLAT,
    UP,
    FloatArray,
    MarginParams,
    Market,
    ModeParams,
    Portfolios,
    account_greeks,
    contingency,
    evaluate,
    liquidatable,
    mm_health_lower_bound,
    scenario_grid,
    scenario_index,
    scenario_of,
    scenario_values,
    sigma_ref,
)
from tests.conftest import scaled
from tests.deployment import YEAR
from tests.margin_reference import reference

DAY = 86_400
NOW = 1_800_000_000
SPOT = 3000.0
E30 = NOW + 30 * DAY
REL, ABS = 1e-9, 1e-6

PARAMS = MarginParams(
    im=ModeParams(k=4.0, v=0.30, a=0.02, conf=1.0, haircut=0.15, a_perp=0.025),
    mm=ModeParams(k=3.0, v=0.20, a=0.01, conf=1.0, haircut=0.10, a_perp=0.01),
    n=3,
    horizon_s=DAY,
    u_min=0.05,
    u_max=0.5,
    tau_ref=30 / 365,
    tau_floor=1 / 365,
    v_max=1.0,
    ref_vol=0.5,
)


def market(**overrides) -> Market:
    """One live expiry in 30 days (atm 60%, skew -0.1), confidence 0.99."""
    fields = {
        "spot": SPOT,
        "confidence": 0.99,
        "now": NOW,
        "expiries": [E30],
        "atm": [0.6],
        "skew": [-0.1],
        "settlement": [np.nan],
        "vol_min": 0.05,
        "vol_max": 3.0,
    }
    fields.update(overrides)
    return Market(**fields)


def book(
    accounts: list[tuple[float, float, list[tuple[float, int, bool, float]]]],
    perps: list[tuple[float, float, float]] | None = None,
) -> Portfolios:
    """Portfolios from [(cash, underlying, [(strike, expiry, is_call, size), ...]), ...] and
    optionally one perp (size, price, owed) per account."""
    slots = max(1, *(len(a[2]) for a in accounts))
    shape = (len(accounts), slots)
    strike, expiry = np.ones(shape), np.full(shape, E30, dtype=np.int64)
    is_call, size = np.zeros(shape, bool), np.zeros(shape)
    for i, (_, _, positions) in enumerate(accounts):
        for j, (k, e, c, q) in enumerate(positions):
            strike[i, j], expiry[i, j], is_call[i, j], size[i, j] = k, e, c, q
    cash = np.array([a[0] for a in accounts], dtype=float)
    q_f, p_f, phi_f = np.array(perps or [(0.0, 0.0, 0.0)] * len(accounts), dtype=float).T
    return Portfolios(
        cash,
        np.array([a[1] for a in accounts], float),
        strike,
        expiry,
        is_call,
        size,
        q_f,
        p_f,
        phi_f,
    )


def assert_matches_reference(pf: Portfolios, m: Market, p: MarginParams = PARAMS) -> None:
    got = evaluate(pf, m, p, with_scenarios=True)
    for a in range(pf.n_accounts):
        ref = reference(pf, a, m, p)
        assert got.mtm[a] == pytest.approx(float(ref["mtm"]), rel=REL, abs=ABS)
        for tag in ("im", "mm"):
            want = ref[tag]
            values = getattr(got, f"scenarios_{tag}")[a]
            grid = want["values"][: values.size]
            assert np.allclose(values, [float(v) for v in grid], rtol=REL, atol=ABS)
            assert getattr(got, f"health_{tag}")[a] == pytest.approx(
                float(want["health"]), rel=REL, abs=ABS
            )
            # The witness is exact unless another scenario is within the tolerance of the
            # minimum (then either index is a valid proof; float rounding picks one).
            ordered = sorted(want["values"])
            w = int(getattr(got, f"witness_{tag}")[a])
            if len(ordered) < 2 or ordered[1] - ordered[0] > REL * abs(ordered[0]) + ABS:
                assert w == want["witness"]
            else:
                assert float(want["values"][w]) == pytest.approx(float(ordered[0]), abs=2 * ABS)


# ---------------------------------------------------------------------------------------------
# Grid, encoding, sigma_ref


def test_scenario_index_encoding():
    n = PARAMS.n
    assert scenario_index(-3, DOWN, n) == 0
    assert scenario_index(3, DOWN, n) == 6
    assert scenario_index(0, FLAT, n) == 10 == PARAMS.flat_index
    assert scenario_index(-3, UP, n) == 14
    assert scenario_index(3, UP, n) == 20 == PARAMS.n_scenarios - 1
    for n in (1, 3, 10):
        for w in range(3 * (2 * n + 1)):
            j, s = scenario_of(w, n)
            assert scenario_index(j, s, n) == w
    with pytest.raises(ValueError):
        scenario_index(4, FLAT, 3)
    with pytest.raises(ValueError):
        scenario_of(21, 3)


def test_grid_by_hand():
    h = math.sqrt(DAY / YEAR)
    for is_im, k in ((True, 4.0), (False, 3.0)):
        grid = scenario_grid(market(), PARAMS, is_im, 0.6)
        u = k * 0.6 * h  # 0.1256 (IM), 0.0942 (MM): inside [u_min, u_max]
        assert grid.sigma_ref == 0.6
        assert grid.u == pytest.approx(u, rel=1e-15)
        expected = [SPOT * (1 + j * u / 3) for j in range(-3, 4)]
        assert np.allclose(grid.spots, expected, rtol=1e-15)
        assert grid.spots[3] == SPOT  # the unshocked point is exactly S
    # The clamps: a tiny vol gives u_min, a huge k gives u_max.
    assert scenario_grid(market(), PARAMS, False, 0.06).u == 0.05
    wide = replace(PARAMS, im=replace(PARAMS.im, k=20.0), mm=replace(PARAMS.mm, k=20.0))
    assert scenario_grid(market(), wide, False, 0.6).u == 0.5


def test_witness_encoding_on_single_positions():
    """The worst scenario of one-sided positions, by monotonicity in spot and vol."""
    pf = book(
        [
            (1000.0, 1.0, []),  # long underlying: lowest spot, vol states tie -> down
            (5000.0, 0.0, [(3200.0, E30, True, -1.0)]),  # short call: highest spot, vol up
            (5000.0, 0.0, [(2800.0, E30, False, -1.0)]),  # short put: lowest spot, vol up
            (0.0, 0.0, [(3200.0, E30, True, 1.0)]),  # long call: lowest spot, vol down
            (0.0, 0.0, [(2800.0, E30, False, 1.0)]),  # long put: highest spot, vol down
        ]
    )
    r = evaluate(pf, market(), PARAMS, with_scenarios=True)
    n = PARAMS.n
    expected = [
        scenario_index(-n, DOWN, n),
        scenario_index(n, UP, n),
        scenario_index(-n, UP, n),
        scenario_index(-n, DOWN, n),
        scenario_index(n, DOWN, n),
    ]
    assert list(r.witness_mm) == expected
    assert list(r.witness_im) == expected
    lowest = r.scenarios_mm[np.arange(5), r.witness_mm]
    assert np.array_equal(lowest, r.scenarios_mm.min(axis=1))
    assert np.array_equal(r.health_mm, lowest - contingency(pf, market(), PARAMS, False))
    assert_matches_reference(pf, market())


def test_sigma_ref_is_the_accounts_own():
    """max(ref_vol, the ATM vol of every live expiry the account holds): an expiry it does not
    hold, listed or not, never moves it."""
    expiries = [NOW - DAY, NOW + 7 * DAY, E30]
    m = market(
        expiries=expiries,
        atm=[0.3, 4.0, 0.6],  # expired; above vol_max; the 30-day expiry
        skew=[0.0] * 3,
        settlement=[2950.0, np.nan, np.nan],
        vol_max=2.5,
    )
    pf = book(
        [
            (0.0, 0.0, [(3000.0, E30, True, 1.0)]),  # 0.6 > ref_vol 0.5
            (0.0, 0.0, [(3000.0, E30, True, 1.0), (3000.0, NOW + 7 * DAY, False, -1.0)]),
            (0.0, 0.0, [(3000.0, NOW - DAY, True, 1.0)]),  # expired only: the floor
            (0.0, 0.0, []),
        ]
    )
    assert list(sigma_ref(pf, m, PARAMS)) == [0.6, 2.5, PARAMS.ref_vol, PARAMS.ref_vol]
    # Listing a far expiry at a huge vol changes nobody who does not hold it.
    listed = market(
        expiries=[*expiries, E30 + 30 * DAY],
        atm=[0.3, 4.0, 0.6, 2.0],
        skew=[0.0] * 4,
        settlement=[2950.0, np.nan, np.nan, np.nan],
        vol_max=2.5,
    )
    assert np.array_equal(evaluate(pf, listed, PARAMS).health_mm, evaluate(pf, m, PARAMS).health_mm)
    assert_matches_reference(pf, m)


def test_stale_entry_marks_up_sigma_and_sigma_ref():
    """VolOracle answers min(sigma (1 + markup), vol_max) for a stale entry, sigma_ref too."""
    m = market(stale_markup=[0.5])
    held = book([(0.0, 0.0, [(3000.0, E30, True, 1.0)])])
    assert sigma_ref(held, m, PARAMS)[0] == pytest.approx(0.9, rel=1e-15)
    assert sigma_ref(held, market(stale_markup=[10.0], vol_max=2.0), PARAMS)[0] == 2.0
    pf = book([(20_000.0, 2.0, [(3300.0, E30, True, -3.0), (2500.0, E30, False, 1.5)])])
    assert_matches_reference(pf, m)
    fresh, stale = evaluate(pf, market(), PARAMS), evaluate(pf, m, PARAMS)
    assert stale.health_mm[0] < fresh.health_mm[0]  # net short vol: more margin when stale


# ---------------------------------------------------------------------------------------------
# Worked examples


def test_cash_only_account():
    pf = book([(1234.5, 0.0, []), (-50.0, 0.0, [])])
    r = evaluate(pf, market(), PARAMS, with_scenarios=True)
    assert list(r.mtm) == [1234.5, -50.0]
    assert list(r.health_im) == list(r.health_mm) == [1234.5, -50.0]
    assert list(r.witness_im) == list(r.witness_mm) == [0, 0]  # 21 ties: the lowest index
    assert np.all(r.scenarios_mm == pf.cash[:, None])
    assert list(liquidatable(pf, market(), PARAMS)) == [1]


def test_covered_call():
    """1 underlying, 1 short 3300 call: worst at the lowest spot with vol up (w = 14)."""
    pf = book([(100.0, 1.0, [(3300.0, E30, True, -1.0)])])
    m = market()
    r = evaluate(pf, m, PARAMS)
    assert_matches_reference(pf, m)
    assert r.witness_mm[0] == r.witness_im[0] == scenario_index(-3, UP, 3) == 14
    # A_M = a_M * 1 * S + (1 - c) * conf_M * 1 * S
    assert contingency(pf, m, PARAMS, False)[0] == pytest.approx(0.01 * 3000 + 0.01 * 1.0 * 3000)
    assert contingency(pf, m, PARAMS, True)[0] == pytest.approx(0.02 * 3000 + 0.01 * 1.0 * 3000)
    # By hand at the witness: S_-3 = S (1 - u), sigma = clamp(0.6 - 0.1 ln(3300/3000)) (1 + v).
    u = 3.0 * 0.6 * math.sqrt(DAY / YEAR)
    x = SPOT * (1 - u)
    tau = 30 * DAY / YEAR
    sigma = (0.6 - 0.1 * math.log(3300 / 3000)) * (1 + 0.2)  # v(tau) = v at tau = tau_ref
    s = sigma * math.sqrt(tau)
    d1 = (math.log(x / 3300) + s * s / 2) / s
    ncdf = lambda z: 0.5 * math.erfc(-z / math.sqrt(2))  # noqa: E731
    call = x * ncdf(d1) - 3300 * ncdf(d1 - s)
    v_w = 100.0 + 1.0 * x * (1 - 0.10) - call
    assert r.health_mm[0] == pytest.approx(v_w - 60.0, rel=1e-12)


def test_short_strangle():
    pf = book([(5000.0, 0.0, [(2700.0, E30, False, -2.0), (3300.0, E30, True, -2.0)])])
    m = market()
    r = evaluate(pf, m, PARAMS)
    assert_matches_reference(pf, m)
    # Short vol and short convexity: the worst is at an end of the spot grid with vol up.
    j, s = scenario_of(int(r.witness_mm[0]), 3)
    assert s == UP and abs(j) == 3
    assert contingency(pf, m, PARAMS, False)[0] == pytest.approx(0.01 * 4 * 3000 + 0.01 * 4 * 3000)


def test_long_put_hedged_with_underlying():
    pf = book([(-4000.0, 2.0, [(2900.0, E30, False, 2.0)])])
    m = market()
    r = evaluate(pf, m, PARAMS)
    assert_matches_reference(pf, m)
    _, s = scenario_of(int(r.witness_mm[0]), 3)
    assert s == DOWN  # long options lose with vol down
    # Only the confidence term: no short options.
    assert contingency(pf, m, PARAMS, False)[0] == pytest.approx(0.01 * 1.0 * 2 * 3000)


# ---------------------------------------------------------------------------------------------
# Expired positions


def test_expired_positions_settled_and_unsettled():
    settled, unsettled, now_exp = NOW - DAY, NOW - 60, NOW
    m = market(
        expiries=[settled, unsettled, now_exp, E30],
        atm=[np.nan, np.nan, 0.5, 0.6],  # expired expiries need no vol entry
        skew=[0.0, 0.0, 0.0, -0.1],
        settlement=[2990.0, np.nan, np.nan, np.nan],
    )
    pf = book(
        [
            (0.0, 0.0, [(2900.0, settled, True, 1.0)]),  # worth 90 whatever the scenario
            (0.0, 0.0, [(3100.0, unsettled, False, 1.0)]),  # max(3100 - S_j, 0)
            (0.0, 0.0, [(3000.0, now_exp, True, -1.0)]),  # expiry == now: expired
            (
                500.0,
                1.0,
                [
                    (2900.0, settled, True, -2.0),
                    (3100.0, unsettled, False, 1.0),
                    (3200.0, E30, True, -1.0),
                ],
            ),
        ]
    )
    r = evaluate(pf, m, PARAMS, with_scenarios=True)
    assert np.all(r.scenarios_mm[0] == 90.0) and r.mtm[0] == 90.0
    refs = sigma_ref(pf, m, PARAMS)
    grid = scenario_grid(m, PARAMS, False, float(refs[1]))
    intrinsic = np.maximum(3100.0 - grid.spots, 0.0)
    assert np.array_equal(r.scenarios_mm[1], np.tile(intrinsic, 3))
    assert r.mtm[1] == 100.0
    grid = scenario_grid(m, PARAMS, False, float(refs[2]))
    assert np.array_equal(r.scenarios_mm[2], -np.tile(np.maximum(grid.spots - 3000.0, 0.0), 3))
    assert r.mtm[2] == 0.0
    # Vol-independent values tie across vol states: the witness is in the down block, and at
    # the lowest spot index among the ties: the put is worthless at S_2 = 3188 and S_3.
    assert r.witness_mm[1] == scenario_index(2, DOWN, 3)
    assert r.witness_mm[2] == scenario_index(3, DOWN, 3)
    # The contingency counts expired positions too.
    assert contingency(pf, m, PARAMS, False)[0] == pytest.approx(0.01 * 1.0 * 3000)
    assert_matches_reference(pf, m)


def test_unknown_expiry_or_missing_vol_entry_raises():
    with pytest.raises(ValueError, match="not listed"):
        evaluate(book([(0.0, 0.0, [(3000.0, E30 + 1, True, 1.0)])]), market(), PARAMS)
    m = market(expiries=[E30], atm=[np.nan])
    with pytest.raises(ValueError, match="no entry"):
        evaluate(book([(0.0, 0.0, [(3000.0, E30, True, 1.0)])]), m, PARAMS)


# ---------------------------------------------------------------------------------------------
# Random books


def random_case(
    seed: int, accounts: int = 40, slots: int = 8
) -> tuple[Portfolios, Market, MarginParams]:
    """Random portfolios over expired (settled, unsettled, expiring now) and live expiries from
    10 minutes to 200 days, strikes on a shared grid or anywhere, both signs, the underlying,
    positive and negative cash, a perp in about half the accounts (either sign, settled near
    the spot, funding owed or received); random params (IM at least as strict as MM)."""
    rng = np.random.default_rng(seed)
    expiries = np.array([NOW - 7200, NOW - 60, NOW, NOW + 600, NOW + DAY, E30, NOW + 200 * DAY])
    live = expiries > NOW
    m = Market(
        spot=SPOT,
        confidence=float(rng.uniform(0.9, 1.0)),
        now=NOW,
        expiries=expiries,
        atm=np.where(live | (rng.random(7) < 0.5), rng.uniform(0.2, 1.5, 7), np.nan),
        skew=rng.uniform(-0.3, 0.3, 7),
        settlement=[float(rng.uniform(2500, 3500)), np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
        vol_min=0.1,
        vol_max=2.5,
        stale_markup=np.where(rng.random(7) < 0.15, 0.3, 0.0),
    )
    shape = (accounts, slots)
    grid = SPOT * np.exp(np.linspace(-0.5, 0.5, 11))
    strike = np.where(
        rng.random(shape) < 0.5, rng.choice(grid, shape), SPOT * np.exp(rng.normal(0, 0.3, shape))
    )
    held = rng.random(shape) < 0.7
    size = np.where(held, np.round(rng.normal(0, 5, shape), 1), 0.0)
    b = np.where(rng.random(accounts) < 0.5, 0.0, rng.uniform(0, 10, accounts))
    pf = Portfolios(
        rng.normal(0, 3000, accounts),
        b,
        strike,
        rng.choice(expiries, shape),
        rng.random(shape) < 0.5,
        size,
    )
    mm = ModeParams(
        k=float(rng.uniform(1, 4)),
        v=float(rng.uniform(0, 0.5)),
        a=float(rng.uniform(0, 0.05)),
        conf=float(rng.uniform(0, 0.6)),
        haircut=float(rng.uniform(0, 0.3)),
        a_perp=float(rng.uniform(0, 0.05)),
    )
    grow = rng.uniform(1.0, 1.5, 6)
    im = ModeParams(
        mm.k * grow[0],
        mm.v * grow[1],
        mm.a * grow[2],
        mm.conf * grow[3],
        min(mm.haircut * grow[4], 0.5),
        mm.a_perp * grow[5],
    )
    params = MarginParams(
        im=im,
        mm=mm,
        n=int(rng.integers(1, 11)),
        horizon_s=float(rng.choice([3600, DAY, 7 * DAY])),
        u_min=0.02,
        u_max=0.6,
        tau_ref=30 / 365,
        tau_floor=1 / 365,
        v_max=float(rng.uniform(0.3, 1.0)),
        ref_vol=1.0,
    )
    has_perp = rng.random(accounts) < 0.5
    pf = replace(
        pf,
        perp_size=np.where(has_perp, np.round(rng.normal(0, 5, accounts), 1), 0.0),
        perp_price=np.where(has_perp, SPOT * np.exp(rng.normal(0, 0.05, accounts)), 0.0),
        perp_owed=np.where(has_perp, rng.normal(0, 20, accounts), 0.0),
    )
    return pf, m, params


def notional(pf: Portfolios) -> FloatArray:
    """(sum |q_p| + b + |q_f|) S per account: the scale of every term of its values."""
    return (np.abs(pf.size).sum(axis=1) + pf.underlying + np.abs(pf.perp_size)) * SPOT


def with_cash_for_health(pf: Portfolios, m: Market, p: MarginParams, target) -> Portfolios:
    """The same positions with cash set so that H_MM = target (H is C plus a C-free part)."""
    h = evaluate(pf, m, p).health_mm
    return replace(pf, cash=pf.cash - h + target)


def moved(m: Market, spot: float, vol: float, dt: int, conf: float) -> Market:
    return replace(m, spot=m.spot * spot, atm=m.atm * vol, now=m.now + dt, confidence=conf)


def test_random_books_match_reference():
    for seed in range(3):
        pf, m, p = random_case(seed, accounts=6)
        assert_matches_reference(pf, m, p)


def test_vectorized_equals_per_account():
    pf, m, p = random_case(11, accounts=30)
    full = evaluate(pf, m, p, with_scenarios=True)
    for a in range(pf.n_accounts):
        one = evaluate(pf.take([a]), m, p, with_scenarios=True)
        for field in (
            "mtm",
            "health_im",
            "health_mm",
            "witness_im",
            "witness_mm",
            "scenarios_im",
            "scenarios_mm",
        ):
            assert np.array_equal(getattr(one, field)[0], getattr(full, field)[a]), field
    assert np.array_equal(scenario_values(pf, m, p, True), full.scenarios_im)
    assert np.array_equal(scenario_values(pf, m, p, False), full.scenarios_mm)


def test_empty_book_and_no_accounts():
    pf = book([(100.0, 2.0, []), (0.0, 0.0, [])])
    r = evaluate(pf, market(), PARAMS)
    u = scenario_grid(market(), PARAMS, False, PARAMS.ref_vol).u  # no positions: the floor
    assert r.mtm[0] == 100.0 + 2.0 * SPOT
    assert r.health_mm[0] == pytest.approx(100.0 + 2.0 * SPOT * (1 - u) * 0.9, rel=1e-15)
    assert r.health_mm[1] == 0.0 and list(liquidatable(pf, market(), PARAMS)) == []
    none = pf.take([])
    assert evaluate(none, market(), PARAMS).mtm.shape == (0,)
    assert liquidatable(none, market(), PARAMS).shape == (0,)


# ---------------------------------------------------------------------------------------------
# IM versus MM


@settings(max_examples=scaled(40))
@given(seed=st.integers(0, 2**32 - 1))
def test_im_at_most_mm_on_a_shared_grid(seed):
    """Same k and v (the same grid), the rest at least as strict: V_IM <= V_MM pointwise and
    A_IM >= A_MM, so H_IM <= H_MM exactly, also in float (rounding is monotone)."""
    pf, m, p = random_case(seed, accounts=20)
    p = replace(p, im=replace(p.im, k=p.mm.k, v=p.mm.v))
    r = evaluate(pf, m, p)
    assert np.all(r.health_im <= r.health_mm)


@settings(max_examples=scaled(40))
@given(seed=st.integers(0, 2**32 - 1))
def test_im_at_most_mm_for_short_option_books(seed):
    """With only short options (plus underlying b >= 0 and any cash), V is concave in the spot
    and non-increasing in vol for each vol state (a perp adds a linear term), so the wider,
    more shocked IM grid finds a value at most MM's minimum: H_IM <= H_MM (here up to float
    rounding)."""
    pf, m, p = random_case(seed, accounts=20)
    pf = replace(pf, size=-np.abs(pf.size))
    r = evaluate(pf, m, p)
    scale = np.abs(pf.cash) + np.abs(pf.perp_owed) + notional(pf) * 3
    assert np.all(r.health_im <= r.health_mm + 1e-12 * scale)


def test_im_covers_mm_off_the_shared_grid():
    """The IM spot points (j u_IM / n) are not a superset of MM's (j u_MM / n): a long straddle
    struck on an MM point is cheapest there and IM's grid misses it. H_IM covers MM's
    scenarios (min of the two), so H_IM <= H_MM still holds, with MM's witness offset."""
    p = replace(PARAMS, im=replace(PARAMS.mm, k=4.0))
    expiry = NOW + DAY
    m = market(confidence=1.0, expiries=[expiry])
    k = float(scenario_grid(m, p, False, 0.6).spots[4])  # S (1 + u_MM / 3)
    pf = book([(0.0, 0.0, [(k, expiry, True, 1.0), (k, expiry, False, 1.0)])])
    r = evaluate(pf, m, p, with_scenarios=True)
    assert r.scenarios_im[0].min() > r.health_mm[0] + 1.0  # IM's grid alone misses it
    assert r.health_im[0] == r.health_mm[0]
    assert r.witness_mm[0] == scenario_index(1, DOWN, 3)
    assert r.witness_im[0] == p.n_scenarios + r.witness_mm[0]


# ---------------------------------------------------------------------------------------------
# The liquidatable set


@settings(max_examples=scaled(100))
@given(
    seed=st.integers(0, 2**32 - 1),
    spot=st.floats(0.55, 1.45),
    vol=st.floats(0.5, 2.0),
    dt=st.sampled_from([0, 1, 600, 3600, DAY]),
    conf=st.floats(0.9, 1.0),
    buffer=st.floats(-0.02, 0.05),
)
def test_liquidatable_equals_full_computation(seed, spot, vol, dt, conf, buffer):
    pf, m, p = random_case(seed)
    rng = np.random.default_rng(seed)
    pf = with_cash_for_health(pf, m, p, notional(pf) * buffer * rng.uniform(0, 2, pf.n_accounts))
    after = moved(m, spot, vol, dt, conf)
    truth = np.flatnonzero(evaluate(pf, after, p).health_mm < 0)
    assert np.array_equal(liquidatable(pf, after, p), truth)
    bound, tol = mm_health_lower_bound(pf, after, p)
    assert np.all(bound <= evaluate(pf, after, p).health_mm + tol)


def test_liquidatable_at_the_boundary():
    """Accounts set to H_MM = 0 (up to rounding): the fast path agrees bit for bit."""
    for seed in range(5):
        pf, m, p = random_case(seed, accounts=80)
        pf = with_cash_for_health(pf, m, p, 0.0)
        h = evaluate(pf, m, p).health_mm
        assert np.array_equal(liquidatable(pf, m, p), np.flatnonzero(h < 0))
        scale = np.abs(pf.cash) + np.abs(pf.perp_owed) + notional(pf) * 3
        assert np.all(np.abs(h) <= 1e-12 * scale)


def test_screen_clears_healthy_books():
    """The bound is tight enough to clear comfortably healthy accounts without the exact model."""
    pf, m, p = random_case(3, accounts=200)
    pf = with_cash_for_health(pf, m, p, 0.2 * notional(pf) + 1.0)
    bound, tol = mm_health_lower_bound(pf, m, p)
    assert np.all(bound >= tol)
    assert liquidatable(pf, m, p).size == 0


# ---------------------------------------------------------------------------------------------
# Greeks


def test_account_greeks_against_closed_forms():
    settled = NOW - DAY
    m = market(
        expiries=[settled, E30], atm=[np.nan, 0.6], skew=[0.0, -0.1], settlement=[2990.0, np.nan]
    )
    positions = [(3300.0, E30, True, -1.0), (2800.0, E30, False, 2.0), (2900.0, settled, True, 5.0)]
    pf = book([(0.0, 1.5, positions)])
    g = account_greeks(pf, m)
    tau = 30 * DAY / YEAR
    want = [1.5, 0.0, 0.0, 0.0]  # the underlying; the settled call has no Greeks
    for k, _, is_call, q in positions[:2]:
        sigma = 0.6 - 0.1 * math.log(k / SPOT)
        s = sigma * math.sqrt(tau)
        d1 = (math.log(SPOT / k) + s * s / 2) / s
        pdf = math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi)
        ncdf = 0.5 * math.erfc(-d1 / math.sqrt(2))
        want[0] += q * (ncdf if is_call else ncdf - 1)
        want[1] += q * pdf / (SPOT * s)
        want[2] += q * SPOT * pdf * math.sqrt(tau)
        want[3] += q * -SPOT * pdf * sigma / (2 * math.sqrt(tau))
    got = [g.delta[0], g.gamma[0], g.vega[0], g.theta[0]]
    assert got == pytest.approx(want, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Inputs


def test_input_validation():
    with pytest.raises(ValueError):
        replace(PARAMS, u_max=1.0)
    with pytest.raises(ValueError):
        replace(PARAMS, n=11)
    with pytest.raises(ValueError):
        ModeParams(k=1.0, v=0.1, a=0.0, conf=0.0, haircut=1.5, a_perp=0.0)
    with pytest.raises(ValueError):
        ModeParams(k=1.0, v=0.1, a=0.0, conf=0.0, haircut=0.1, a_perp=0.21)
    with pytest.raises(ValueError):
        market(expiries=[E30, E30 - 1], atm=[0.5, 0.5], skew=[0, 0], settlement=[np.nan] * 2)
    with pytest.raises(ValueError):
        book([(0.0, -1.0, [])])
    with pytest.raises(ValueError):
        book([(0.0, 0.0, [(0.0, E30, True, 1.0)])])
    assert PARAMS.im.at_least_as_strict_as(PARAMS.mm)
    pf = book([(0.0, 0.0, [(3000.0, E30, True, 1.0)])])
    with pytest.raises(ValueError):
        pf.size[0, 0] = 2.0  # read-only: the cached book stays valid


def test_screen_bound_is_attained_for_a_single_short_option():
    """For one short option the bound's end-of-grid, vol-up value is the exact worst case."""
    pf = book(
        [
            (9000.0, 0.0, [(3300.0, E30, True, -2.0)]),
            (9000.0, 0.0, [(2700.0, E30, False, -2.0)]),
            (9000.0, 0.0, [(3000.0, E30, True, -3.0)]),
        ]
    )
    bound, tol = mm_health_lower_bound(pf, market(), PARAMS)
    health = evaluate(pf, market(), PARAMS).health_mm
    assert np.all(bound <= health + tol)
    assert np.allclose(bound, health, rtol=1e-12, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# The perp


def test_lone_perps_by_hand():
    """A perp alone: V_{j,s} = C + q_f (S_j - P_f) - Phi_f in every vol state, linear in the
    spot, so H_M is its value at the grid's lowest spot (long) or highest (short) minus
    A_M = a_perp_M |q_f| S + (1 - c) conf_M |q_f| S; MtM is its value at S."""
    m = market()
    pf = book(
        [(1000.0, 0.0, []), (1000.0, 0.0, [])], perps=[(2.0, 2950.0, 12.5), (-2.0, 3050.0, -7.25)]
    )
    r = evaluate(pf, m, PARAMS, with_scenarios=True)
    assert list(r.mtm) == [1000.0 + 2.0 * 50.0 - 12.5, 1000.0 - 2.0 * -50.0 + 7.25]
    h = math.sqrt(DAY / YEAR)
    n = PARAMS.n
    for is_im, tag, k, a_perp in ((False, "mm", 3.0, 0.01), (True, "im", 4.0, 0.025)):
        u = k * PARAMS.ref_vol * h  # no option: sigma_ref is the floor
        a = a_perp * 2.0 * SPOT + 0.01 * 1.0 * 2.0 * SPOT
        assert list(contingency(pf, m, PARAMS, is_im)) == pytest.approx([a, a], rel=1e-15)
        spots = SPOT * (1 + np.arange(-n, n + 1) * u / n)
        long = 1000.0 + 2.0 * (spots - 2950.0) - 12.5
        short = 1000.0 - 2.0 * (spots - 3050.0) + 7.25
        scenarios = getattr(r, f"scenarios_{tag}")
        assert np.allclose(scenarios[0], np.tile(long, 3), rtol=1e-15, atol=1e-12)
        assert np.allclose(scenarios[1], np.tile(short, 3), rtol=1e-15, atol=1e-12)
        # IM's wider grid and larger contingency give the lower health: H_IM is IM's own.
        health = getattr(r, f"health_{tag}")
        assert health[0] == pytest.approx(long[0] - a, rel=1e-14)
        assert health[1] == pytest.approx(short[-1] - a, rel=1e-14)
        witness = getattr(r, f"witness_{tag}")
        assert list(witness) == [scenario_index(-n, DOWN, n), scenario_index(n, DOWN, n)]
    assert r.health_im[0] < r.health_mm[0] < r.mtm[0]
    assert_matches_reference(pf, m)


def test_perp_lower_bound_is_exact_and_screens():
    """The perp is linear in the spot: alone, the screen's bound is the health itself (up to
    rounding); set just below zero the account is liquidatable, just above it is not."""
    m = market()
    perps = [(2.0, 2950.0, 12.5), (-2.0, 3050.0, -7.25), (0.5, 3100.0, 0.0)]
    pf = book([(1000.0, 1.0, [])] * 3, perps=perps)
    bound, tol = mm_health_lower_bound(pf, m, PARAMS)
    health = evaluate(pf, m, PARAMS).health_mm
    assert np.all(bound <= health + tol)
    assert np.allclose(bound, health, rtol=1e-12, atol=1e-9)
    edge = with_cash_for_health(pf, m, PARAMS, np.array([-1e-3, 1e-3, -1e-3]))
    assert list(liquidatable(edge, m, PARAMS)) == [0, 2]


def test_short_calls_hedged_with_a_long_perp():
    """Short calls delta-hedged with a long perp: the perp adds to every scenario value and to
    both contingency terms; the mirror matches the reference, and at the same cash the hedge
    leaves more MM health than the naked calls (a spot move costs only the calls' convexity)."""
    m = market()
    calls = [(3000.0, E30, True, -2.0)]
    hedge = float(-account_greeks(book([(0.0, 0.0, calls)]), m).delta[0])
    pf = book([(2000.0, 0.0, calls), (2000.0, 0.0, calls)], perps=[(hedge, 2990.0, 1.5), (0, 0, 0)])
    assert account_greeks(pf, m).delta[0] == pytest.approx(0.0, abs=1e-12)
    a = 0.01 * 2.0 * SPOT + 0.01 * hedge * SPOT + 0.01 * 1.0 * (2.0 + hedge) * SPOT
    assert contingency(pf, m, PARAMS, False)[0] == pytest.approx(a, rel=1e-15)
    r = evaluate(pf, m, PARAMS)
    assert r.mtm[0] - r.mtm[1] == pytest.approx(hedge * 10.0 - 1.5, rel=1e-12)
    assert r.health_mm[0] > r.health_mm[1]
    assert_matches_reference(pf, m)


def test_perp_greeks_are_its_size_in_delta():
    pf = book(
        [(0.0, 1.5, []), (0.0, 0.0, [(3300.0, E30, True, -1.0)])],
        perps=[(2.0, 2950.0, 3.0), (-0.75, 3000.0, 0.0)],
    )
    g = account_greeks(pf, market())
    alone = account_greeks(book([(0.0, 0.0, [(3300.0, E30, True, -1.0)])]), market())
    assert g.delta[0] == 3.5 and g.gamma[0] == g.vega[0] == g.theta[0] == 0.0
    assert g.delta[1] == alone.delta[0] - 0.75
    assert (g.gamma[1], g.vega[1], g.theta[1]) == (alone.gamma[0], alone.vega[0], alone.theta[0])


def test_perp_inputs():
    pf = book([(0.0, 0.0, []), (0.0, 0.0, [])])
    assert pf.perp_size.tolist() == pf.perp_price.tolist() == pf.perp_owed.tolist() == [0.0] * 2
    perps = book([(0.0, 0.0, []), (5.0, 0.0, [])], perps=[(1.0, 2900.0, 2.0), (-3.0, 3100.0, -1.0)])
    sub = perps.take([1])
    assert (sub.cash[0], sub.perp_size[0], sub.perp_price[0], sub.perp_owed[0]) == (
        5.0,
        -3.0,
        3100.0,
        -1.0,
    )
    base = (
        np.zeros(2),
        np.zeros(2),
        np.ones((2, 1)),
        np.full((2, 1), E30),
        np.zeros((2, 1), bool),
        np.zeros((2, 1)),
    )
    for bad in (
        {"perp_size": np.ones(3)},  # one per account
        {"perp_owed": np.array([0.0, np.nan])},
        {"perp_price": np.array([-1.0, 0.0])},
        {"perp_size": np.ones((2, 1))},
    ):
        with pytest.raises(ValueError):
            Portfolios(*base, **bad)
    with pytest.raises(ValueError):
        perps.perp_size[0] = 2.0  # read-only as the other arrays
