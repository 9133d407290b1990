"""The margin reference: a scalar, line-by-line transcription of docs/margin_model.md in mpmath.

Deliberately naive (one scenario and one position at a time, 60 digits, no vectorisation,
sharing no code with keeper/margin.py or keeper/black76.py) so that it can be read against the
document and trusted as the independent reference for keeper/margin.py, the engine's worked
portfolios (tests/cases/portfolios) and the mirror's unit tests. It takes keeper.margin's input
types as plain data (`Portfolios`, `Market`, `MarginParams`: arrays and floats) and prices with
the tests' one mpmath Black-76 (tests/mp_reference.py).
"""

from __future__ import annotations

import math

import mpmath as mp

from keeper.margin import MarginParams, Market, Portfolios
from tests.deployment import YEAR
from tests.mp_reference import black76_real


def ref_black76(f, k, tau, sigma, is_call):
    """Black-76 price; intrinsic at tau = 0 (sigma unused there)."""
    if tau == 0:
        f, k = mp.mpf(f), mp.mpf(k)
        return max(f - k, 0) if is_call else max(k - f, 0)
    return black76_real(f, k, tau, sigma, is_call)["price"]


def ref_clamp(x, lo, hi):
    return min(max(x, lo), hi)


def oracle_vol(m: Market, i: int, strike, spot):
    """VolOracle.sigma at the current spot, with the stale markup."""
    raw = mp.mpf(m.atm[i]) + mp.mpf(m.skew[i]) * mp.log(mp.mpf(strike) / mp.mpf(spot))
    vol = ref_clamp(raw, mp.mpf(m.vol_min[i]), mp.mpf(m.vol_max[i]))
    if m.stale_markup[i] > 0:
        vol = min(vol * (1 + mp.mpf(m.stale_markup[i])), mp.mpf(m.vol_max[i]))
    return vol


def ref_sigma_ref(m: Market, p: MarginParams, held: set[int]):
    """max(ref_vol, the ATM vol of every live expiry held: indices into m.expiries)."""
    out = mp.mpf(p.ref_vol)
    for i in held:
        if m.expiries[i] > m.now and not math.isnan(m.atm[i]):
            out = max(out, oracle_vol(m, i, m.spot, m.spot))  # at K = S: the ATM vol
    return out


def reference(pf: Portfolios, a: int, m: Market, p: MarginParams) -> dict:
    """mtm, and per mode: values (list by scenario index), health, witness, for account a."""
    spot = mp.mpf(m.spot)
    cash, b = mp.mpf(pf.cash[a]), mp.mpf(pf.underlying[a])
    positions = []
    held: set[int] = set()
    for k, e, c, q in zip(pf.strike[a], pf.expiry[a], pf.is_call[a], pf.size[a], strict=True):
        if q == 0:
            continue
        i = list(m.expiries).index(e)
        held.add(i)
        tau = mp.mpf(max(int(e) - m.now, 0)) / YEAR
        settle = None if tau > 0 or math.isnan(m.settlement[i]) else mp.mpf(m.settlement[i])
        sigma = oracle_vol(m, i, k, spot) if tau > 0 else None
        positions.append((mp.mpf(k), tau, bool(c), mp.mpf(q), sigma, settle))

    def value(x, k, tau, c, sigma, settle):
        return ref_black76(settle if settle is not None else x, k, tau, sigma, c)

    # The perp: q_f (x - P_f) - Phi_f at spot x, in every vol state.
    q_f, p_f, phi_f = (mp.mpf(v[a]) for v in (pf.perp_size, pf.perp_price, pf.perp_owed))

    def perp(x):
        return q_f * (x - p_f) - phi_f

    out = {
        "mtm": cash
        + b * spot
        + sum(q * value(spot, k, t, c, s, st) for k, t, c, q, s, st in positions)
        + perp(spot)
    }
    gross = sum(abs(q) for _, _, _, q, _, _ in positions)
    short = sum(-q for _, _, _, q, _, _ in positions if q < 0)
    for tag, mode in (("im", p.im), ("mm", p.mm)):
        u = ref_clamp(
            mp.mpf(mode.k) * ref_sigma_ref(m, p, held) * mp.sqrt(mp.mpf(p.horizon_s) / YEAR),
            mp.mpf(p.u_min),
            mp.mpf(p.u_max),
        )
        values = []
        for s in (0, 1, 2):
            for j in range(-p.n, p.n + 1):
                x = spot * (1 + j * u / p.n)
                total = cash + b * x * (1 - mp.mpf(mode.haircut)) + perp(x)
                for k, t, c, q, sigma, settle in positions:
                    if t > 0:
                        shock = min(
                            mp.mpf(mode.v)
                            * mp.sqrt(mp.mpf(p.tau_ref) / max(t, mp.mpf(p.tau_floor))),
                            mp.mpf(p.v_max),
                        )
                        sigma = (sigma / (1 + shock), sigma, sigma * (1 + shock))[s]
                    total += q * value(x, k, t, c, sigma, settle)
                values.append(total)
        lowest = min(values)
        conting = (
            mp.mpf(mode.a) * short * spot
            + mp.mpf(mode.a_perp) * abs(q_f) * spot
            + (1 - mp.mpf(m.confidence)) * mp.mpf(mode.conf) * (gross + abs(q_f)) * spot
        )
        out[tag] = {
            "values": values,
            "health": lowest - conting,
            "witness": values.index(lowest),
            "contingency": conting,
        }
    # H_IM covers MM's scenarios: min(IM's grid, H_MM), MM's witness offset by 3(2n + 1).
    grid_im = out["im"]
    if out["mm"]["health"] < grid_im["health"]:
        out["im"] = {
            **grid_im,
            "health": out["mm"]["health"],
            "witness": out["mm"]["witness"] + len(grid_im["values"]),
            "values": grid_im["values"] + out["mm"]["values"],
        }
    return out
