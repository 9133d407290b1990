"""Exact references for the on-chain math, in 60-digit mpmath, on wad inputs (ints).

Every function takes and returns *real* values scaled by 1e18 (as mpmath numbers, unrounded),
so a test compares the contract's integer output with the exact real result.
"""

from __future__ import annotations

import math

import mpmath as mp

mp.mp.dps = 60
WAD = mp.mpf(10) ** 18


def w(x: int) -> mp.mpf:
    """A wad integer as its real value."""
    return mp.mpf(x) / WAD


def exp(x: int) -> mp.mpf:
    return mp.exp(w(x)) * WAD


def ln(x: int) -> mp.mpf:
    return mp.log(w(x)) * WAD


def sqrt(x: int) -> int:
    """floor(sqrt(x * 1e18)), exactly (integer square root: no precision limit)."""
    return math.isqrt(x * 10**18)


def cdf(x: int) -> mp.mpf:
    return mp.ncdf(w(x)) * WAD


def pdf(x: int) -> mp.mpf:
    return mp.npdf(w(x)) * WAD


def black76(forward: int, strike: int, tau: int, sigma: int, is_call: bool) -> dict[str, mp.mpf]:
    """Exact Black-76 (r = 0) price and Greeks in wad units; intrinsic when sigma*sqrt(tau) = 0."""
    f, k, t, s = w(forward), w(strike), w(tau), w(sigma)
    v = s * mp.sqrt(t)
    if v == 0:
        value = max(f - k, 0) if is_call else max(k - f, 0)
        return {"price": value * WAD}
    d1 = (mp.log(f / k) + v * v / 2) / v
    d2 = d1 - v
    if is_call:
        value = f * mp.ncdf(d1) - k * mp.ncdf(d2)
        delta = mp.ncdf(d1)
    else:
        value = k * mp.ncdf(-d2) - f * mp.ncdf(-d1)
        delta = mp.ncdf(d1) - 1
    phi = mp.npdf(d1)
    return {
        "price": value * WAD,
        "delta": delta * WAD,
        "gamma": phi / (f * v) * WAD,
        "vega": f * phi * mp.sqrt(t) * WAD,
        "theta": -f * phi * s / (2 * mp.sqrt(t)) * WAD,
        "d1": d1,
    }


def greeks_tolerance(
    forward: int, tau: int, sigma: int, exact: dict[str, mp.mpf]
) -> dict[str, mp.mpf]:
    """Error bounds (in wei) of black76.greeks, from the input roundings it cannot avoid.

    sqrt(tau) and v = sigma sqrt(tau) are floored to wads (each off by < 1e-18 absolute), and
    ln(F/K) is within 1 wei, so d1 is off by at most
        dd1 = (3 + (1 + sigma) (1 + |d2|)) 1e-18 / v.
    phi(d1) is then within 1.5e-18 + |d1| phi dd1; every Greek inherits that through its closed
    form plus the relative error of the floored sqrt(tau) or v, plus 2 wei of final rounding,
    plus 1e-16 relative of fixed-point arithmetic.
    """
    f, t, s = w(forward), w(tau), w(sigma)
    v = s * mp.sqrt(t)
    d1 = exact["d1"]
    d2 = d1 - v
    phi = mp.npdf(d1)
    unit = mp.mpf("1e-18")
    dv = (1 + s) * unit
    dd1 = (3 + (1 + s) * (1 + abs(d2))) * unit / v
    dphi = mp.mpf("1.5e-18") + abs(d1) * phi * dd1
    sqrt_t = mp.sqrt(t)
    bound = {
        "delta": phi * dd1 + 3 * unit,
        "gamma": dphi / (f * v) + phi / (f * v) * dv / v,
        "vega": f * (sqrt_t * dphi + phi * unit),
        "theta": f * s / (2 * sqrt_t) * (dphi + phi * unit / sqrt_t),
    }
    return {k: b * WAD + 2 + abs(exact[k]) * mp.mpf("1e-16") for k, b in bound.items()}
