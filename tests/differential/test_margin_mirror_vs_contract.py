"""keeper/margin.py (float64 numpy) against the contract's margin model (RiskCalculator, which
MarginEngine calls) on random portfolios: MtM, H_IM and H_MM agree within 1e-9 relative plus
1e-6 USD, the sign of H_MM agrees outside that band, and so do the witnesses unless two
scenarios tie within it. On the same portfolios the contract's health floor stays at or
below both healths (the soundness of the initial-margin checks' fast path).

Portfolios: 1..16 positions over up to four expiries (one possibly expired, settled or not),
calls and puts, strikes around the spot, long and short sizes, cash positive or negative,
underlying collateral, and usually a perp (either sign, settled at an index price near the spot,
funding owed or received). The portfolio is built and its vol entries pushed, then time passes
(none, within the vol heartbeat, or past it): live expiries shorten, some expire unsettled, and
past the heartbeat every entry is stale (the oracle's markup). Vols come from a deployed
VolOracle (skewed surfaces), the same numbers the engine reads.
"""

from __future__ import annotations

import math

import boa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper import margin as km
from keeper import series
from tests import protocol as P  # noqa: N812
from tests import risk_inputs as R  # noqa: N812
from tests.conftest import load, scaled
from tests.deployment import MARGIN_PARAMS
from tests.strategies import mirror_case

WAD = 10**18
NOW = P.START
DAY = 86_400
# The fixture's VolOracle: entries older than a day are stale and marked up by half.
HEARTBEAT, STALE_MARKUP = DAY, 0.5

# The perp (q_f, P_f / S, Phi_f) or None; and the seconds that pass after the portfolio is built.
perp_terms = st.one_of(
    st.none(),
    st.tuples(
        st.floats(0.01, 100) | st.floats(-100, -0.01),
        st.floats(0.9, 1.1),
        st.floats(-2_000, 2_000),
    ),
)
elapsed_time = st.one_of(st.just(0), st.integers(1, HEARTBEAT), st.integers(HEARTBEAT + 1, 3 * DAY))


def wad6(x: float) -> int:
    """x as a wad on a 1e-6 grid (what the engine would hold, in the inputs' precision)."""
    return round(x * 10**6) * 10**12


@pytest.fixture(scope="module")
def chain():
    with boa.env.anchor():
        boa.env.time_travel(seconds=max(NOW - boa.env.timestamp, 0))
        vol = load(
            "contracts/oracle/VolOracle.vy",
            WAD // 20,
            5 * WAD,
            10 * WAD,
            2 * WAD,
            HEARTBEAT,
            int(STALE_MARKUP * WAD),
        )
        vol.add_feeder(boa.env.eoa)
        yield vol, load("contracts/margin/RiskCalculator.vy")


@settings(max_examples=scaled(60))
@given(c=mirror_case, perp=perp_terms, elapsed=elapsed_time)
def test_mirror_agrees_with_contract(chain, c, perp, elapsed):
    vol, calculator = chain
    now = NOW + elapsed
    with boa.env.anchor():
        spot = round(c["spot"], 6)
        expiries = sorted(NOW + d * DAY for d in c["days"])
        if c["expired"] != "none":
            expiries[0] = NOW - 3600  # already expired
        for e, atm, skew in zip(expiries, c["atm"], c["skew"], strict=True):
            if e > NOW:
                vol.update(e, int(atm * WAD), int(skew * WAD))
        boa.env.time_travel(seconds=elapsed)
        settlement = [math.nan] * 4
        if c["expired"] == "settled":
            settlement[0] = round(spot * 1.05, 6)
        spot_wad = int(spot * 10**6) * 10**12
        perp_wad = R.NO_PERP
        if perp is not None:
            perp_wad = (wad6(perp[0]), wad6(spot * perp[1]), wad6(perp[2]))
        held: dict[tuple[int, int, bool], float] = {}
        for ei, lm, is_call, size, long in c["positions"]:
            strike = round(spot * math.exp(lm), 2)
            key = (ei, int(strike * 100), is_call)
            held[key] = held.get(key, 0.0) + (size if long else -size)
        rows, priced = [], []
        for (ei, strike_c, is_call), size in held.items():
            size_wad = round(size * 10**6) * 10**12
            if size_wad == 0:
                continue
            strike_wad = strike_c * 10**16
            e = expiries[ei]
            # What the engine passes: the expiry's packed entry (the calculator evaluates the
            # smile); and the VolOracle's own answer, for the same portfolio priced at it.
            smile = vol.packed_entries([e])[1][0] if e > now else 0
            sigma = vol.sigma(e, strike_wad, spot_wad) if e > now else 0
            settle = 0 if math.isnan(settlement[ei]) else int(settlement[ei] * 10**6) * 10**12
            word = series.pack_position(series.series_id(e, strike_wad, is_call), size_wad)
            rows.append((word, smile if e > now else settle))
            priced.append(R.position(strike_wad, e, is_call, size_wad, sigma, settle, now))
        cash_wad = int(c["cash"] * 10**6) * 10**12
        b_wad = int(c["underlying"] * 10**6) * 10**12
        conf_wad = int(c["confidence"] * 10**6) * 10**12
        limits = vol.packed_entries([])[0]
        portfolio = R.portfolio(cash_wad, b_wad, rows, perp_wad)
        market = R.market(spot_wad, conf_wad, now, P.REF_VOL, limits)
        initial = calculator.initial_health(portfolio, market, P.IM, P.MM, P.GRID)
        on_chain = {
            "mtm": calculator.mtm(portfolio, market),
            "im_grid": calculator.health(portfolio, market, P.IM, P.GRID),
            "im": (initial[0], initial[1]),
            "mm": calculator.health(portfolio, market, P.MM, P.GRID),
        }
        # H_IM covers MM's scenarios: it is the lower of IM's grid and H_MM.
        assert initial[2] == on_chain["mm"][0]
        assert initial[0] == min(on_chain["im_grid"][0], on_chain["mm"][0]) <= on_chain["mm"][0]
        assert calculator.meets_initial_margin(portfolio, market, P.IM, P.MM, P.GRID) == (
            initial[0] >= 0
        )
        # The calculator's smile is the VolOracle's sigma to the wei: the same portfolio with
        # every vol given as the oracle's answer has the same MtM exactly.
        answered = R.market(spot_wad, conf_wad, now, P.REF_VOL)
        assert (
            calculator.mtm(R.portfolio(cash_wad, b_wad, priced, perp_wad), answered)
            == (on_chain["mtm"])
        )
        # The health floor (no vols, no grid) never exceeds the health it stands in for.
        for tag, mode in (("im", P.IM), ("mm", P.MM)):
            assert calculator.health_floor(portfolio, market, mode, P.GRID) <= on_chain[tag][0]
        # The one-scenario path (the witness check) prices each vol state as the grid does:
        # the witness reproduces the health to the wei, and the three vol states at its spot
        # point are compared with the mirror below.
        points = 2 * P.GRID[0] + 1
        states = {}
        for tag, mode in (("im", P.IM), ("mm", P.MM)):
            health, witness = on_chain["im_grid" if tag == "im" else tag]
            a = calculator.contingency(portfolio, market, mode)
            assert calculator.scenario_value(portfolio, market, mode, P.GRID, witness) - a == health
            j = witness % points
            states[tag] = [
                (
                    s * points + j,
                    calculator.scenario_value(portfolio, market, mode, P.GRID, s * points + j),
                )
                for s in range(3)
            ]

    atm = [math.nan if e <= now else a for e, a in zip(expiries, c["atm"], strict=True)]
    mkt = km.Market(
        spot=spot_wad / WAD,
        confidence=conf_wad / WAD,
        now=now,
        expiries=np.array(expiries),
        atm=np.array(atm),
        skew=np.array(c["skew"]),
        settlement=np.array(settlement),
        vol_min=0.05,
        vol_max=5.0,
        stale_markup=STALE_MARKUP if elapsed > HEARTBEAT else 0.0,
    )
    width = max(len(rows), 1)
    terms = [R.unpack(r, now) for r in rows]
    pf = km.Portfolios(
        cash=np.array([cash_wad / WAD]),
        underlying=np.array([b_wad / WAD]),
        strike=np.array([[t[0] / WAD for t in terms] or [1.0]]).reshape(1, width),
        expiry=np.array([[t[1] for t in terms] or [NOW]]).reshape(1, width),
        is_call=np.array([[t[2] for t in terms] or [True]]).reshape(1, width),
        size=np.array([[t[3] / WAD for t in terms] or [0.0]]).reshape(1, width),
        perp_size=np.array([perp_wad[0] / WAD]),
        perp_price=np.array([perp_wad[1] / WAD]),
        perp_owed=np.array([perp_wad[2] / WAD]),
    )
    mirror = km.evaluate(pf, mkt, MARGIN_PARAMS, with_scenarios=True)

    def close(got_wad: int, expected: float) -> bool:
        return abs(got_wad / WAD - expected) <= 1e-9 * abs(expected) + 1e-6

    assert close(on_chain["mtm"], float(mirror.mtm[0]))
    for tag in ("im", "mm"):
        health, witness = on_chain[tag]
        expected = float(getattr(mirror, f"health_{tag}")[0])
        assert close(health, expected), (tag, health / WAD, expected)
        scenarios = getattr(mirror, f"scenarios_{tag}")[0]
        for w, value in states[tag]:
            assert close(value, float(scenarios[w])), (tag, w, value / WAD, float(scenarios[w]))
        values = np.sort(scenarios)
        # IM's witness may name an MM scenario (H_IM = min(IM's grid, H_MM)): checked for MM.
        if tag == "mm" and values[1] - values[0] > 1e-9 * abs(values[0]) + 2e-6:
            assert witness == int(getattr(mirror, f"witness_{tag}")[0])
    band = 1e-9 * abs(float(mirror.health_mm[0])) + 1e-6
    if abs(float(mirror.health_mm[0])) > band:
        assert (on_chain["mm"][0] < 0) == (mirror.health_mm[0] < 0)


# Every field alone at the contract's bounds and one wei (one unit) beyond them, and at values
# in between: MarginParams.from_wads accepts exactly what RiskCalculator.check_params does.
_WAD_EDGES = sorted(
    {0, 1, 10**16 - 1, 10**16, WAD // 5, WAD // 5 + 1, WAD // 2, WAD // 2 + 1}
    | {9 * WAD // 10, 9 * WAD // 10 + 1, WAD - 1, WAD, WAD + 1, 10 * WAD, 10 * WAD + 1}
    | {20 * WAD, 20 * WAD + 1}
)
_GRID_EDGES = {0: [0, 1, 10, 11], 1: [3599, 3600, 30 * DAY, 30 * DAY + 1]}


def _variants():
    base = [list(P.IM), list(P.MM), list(P.GRID), P.REF_VOL]
    for part, size in ((0, len(P.IM)), (1, len(P.MM)), (2, len(P.GRID))):
        for i in range(size):
            values = _GRID_EDGES.get(i, _WAD_EDGES) if part == 2 else _WAD_EDGES
            for value in values:
                case = [list(base[0]), list(base[1]), list(base[2]), base[3]]
                case[part][i] = value
                yield case
    for value in _WAD_EDGES:
        yield [list(P.IM), list(P.MM), list(P.GRID), value]


def test_mirror_accepts_exactly_the_contracts_parameters(chain):
    _, calc = chain
    verdicts = {True: 0, False: 0}
    for im, mm, grid, ref_vol in _variants():
        try:
            calc.check_params(tuple(im), tuple(mm), tuple(grid), ref_vol, 16)
            on_chain = True
        except boa.BoaError:
            on_chain = False
        try:
            km.MarginParams.from_wads(im, mm, grid, ref_vol)
            off_chain = True
        except ValueError:
            off_chain = False
        assert on_chain == off_chain, (im, mm, grid, ref_vol, on_chain)
        verdicts[on_chain] += 1
    assert min(verdicts.values()) > 50  # both sides of every bound were tried
