"""Exact references in 60-digit mpmath: the one Black-76 of the tests, and the on-chain math on
wad inputs (ints).

`black76_real` is Black-76 (r = 0) and its Greeks on real numbers: the tests of
keeper/black76.py, the margin reference (tests/margin_reference.py) and, through `black76`,
the contract's math all price with it. The wad functions take and return *real* values scaled
by 1e18 (as mpmath numbers, unrounded), so a test compares the contract's integer output with
the exact real result.
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


GREEKS = ("price", "delta", "gamma", "vega", "theta", "vanna", "volga")


def black76_real(forward, strike, tau, sigma, is_call: bool) -> dict[str, mp.mpf]:
    """Exact Black-76 (r = 0) on real inputs (anything mpmath takes; tau in years): price,
    delta, gamma, vega, theta (per year), vanna, volga and d1 from their closed forms. When
    sigma sqrt(tau) = 0 the option is worth its intrinsic value and only "price" is given."""
    f, k, t, s = (mp.mpf(x) for x in (forward, strike, tau, sigma))
    v = s * mp.sqrt(t)
    if v == 0:
        return {"price": max(f - k, 0) if is_call else max(k - f, 0)}
    d1 = (mp.log(f / k) + v * v / 2) / v
    d2 = d1 - v
    sign = 1 if is_call else -1
    phi = mp.npdf(d1)
    vega = f * phi * mp.sqrt(t)
    return {
        "price": sign * (f * mp.ncdf(sign * d1) - k * mp.ncdf(sign * d2)),
        "delta": sign * mp.ncdf(sign * d1),
        "gamma": phi / (f * v),
        "vega": vega,
        "theta": -f * phi * s / (2 * mp.sqrt(t)),
        "vanna": -phi * d2 / s,
        "volga": vega * d1 * d2 / s,
        "d1": d1,
    }


def black76(forward: int, strike: int, tau: int, sigma: int, is_call: bool) -> dict[str, mp.mpf]:
    """`black76_real` on wad inputs: price and Greeks in wad units (d1 as a real);
    intrinsic (price only) when sigma*sqrt(tau) = 0."""
    exact = black76_real(w(forward), w(strike), w(tau), w(sigma), is_call)
    return {k: v if k == "d1" else v * WAD for k, v in exact.items()}


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
