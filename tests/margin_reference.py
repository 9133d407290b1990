"""A scalar, line-by-line transcription of docs/margin_model.md in mpmath: the hand check.

Deliberately naive (one scenario and one position at a time, 40 digits, no vectorisation) so
that it can be read against the document and trusted as the independent reference for the
worked examples of the engine and for keeper/margin.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath as mp

mp.mp.dps = 40
YEAR = 31_536_000


@dataclass(frozen=True)
class Option:
    strike: float
    expiry: int
    is_call: bool
    size: float  # signed, units of underlying
    sigma: float  # vol at the current spot
    settlement: float = 0.0  # 0 until recorded


@dataclass(frozen=True)
class Mode:
    k: float
    v: float
    a: float
    conf: float
    haircut: float


@dataclass(frozen=True)
class Grid:
    n: int
    horizon: int
    u_min: float
    u_max: float
    tau_ref: float
    tau_floor: float
    v_max: float


def bs(f, k, tau, sigma, is_call):
    f, k, tau, sigma = (mp.mpf(x) for x in (f, k, tau, sigma))
    v = sigma * mp.sqrt(tau)
    if v == 0:
        return max(f - k, 0) if is_call else max(k - f, 0)
    d1 = (mp.log(f / k) + v * v / 2) / v
    d2 = d1 - v
    if is_call:
        return f * mp.ncdf(d1) - k * mp.ncdf(d2)
    return k * mp.ncdf(-d2) - f * mp.ncdf(-d1)


def tau_years(expiry: int, now: int):
    return mp.mpf(max(expiry - now, 0)) / YEAR


def unit_value(o: Option, spot, now: int, sigma):
    tau = tau_years(o.expiry, now)
    if tau == 0:
        price = mp.mpf(o.settlement) if o.settlement else spot
        return max(price - o.strike, 0) if o.is_call else max(o.strike - price, 0)
    return bs(spot, o.strike, tau, sigma, o.is_call)


def spot_shock(mode: Mode, grid: Grid, sigma_ref):
    u = mode.k * mp.mpf(sigma_ref) * mp.sqrt(mp.mpf(grid.horizon) / YEAR)
    return min(max(u, grid.u_min), grid.u_max)


def vol_shock(mode: Mode, grid: Grid, tau):
    return min(mode.v * mp.sqrt(grid.tau_ref / max(tau, grid.tau_floor)), grid.v_max)


def scenario_values(cash, underlying, options, spot, now, sigma_ref, mode, grid):
    """V_w for every scenario index w = s (2n + 1) + (j + n)."""
    n = grid.n
    u = spot_shock(mode, grid, sigma_ref)
    values = []
    for s in range(3):
        for j in range(-n, n + 1):
            spot_j = mp.mpf(spot) * (1 + j * u / n)
            total = cash + underlying * spot_j * (1 - mode.haircut)
            for o in options:
                shock = vol_shock(mode, grid, tau_years(o.expiry, now))
                sigma = [o.sigma / (1 + shock), o.sigma, o.sigma * (1 + shock)][s]
                total += o.size * unit_value(o, spot_j, now, sigma)
            values.append(total)
    return values


def contingency(options, spot, confidence, mode):
    short = sum(-o.size for o in options if o.size < 0)
    gross = sum(abs(o.size) for o in options)
    return mode.a * short * spot + (1 - confidence) * mode.conf * gross * spot


def health(cash, underlying, options, spot, confidence, now, sigma_ref, mode, grid):
    values = scenario_values(cash, underlying, options, spot, now, sigma_ref, mode, grid)
    worst = min(values)
    return worst - contingency(options, spot, confidence, mode), values.index(worst)


def mtm(cash, underlying, options, spot, now):
    return (
        cash + underlying * spot + sum(o.size * unit_value(o, spot, now, o.sigma) for o in options)
    )
