"""Vectorized Black-76 prices and Greeks (r = 0), and their aggregation over a portfolio.

Conventions (DESIGN.md, "Keeper"): forward F, strike K, time to expiry tau in years, volatility
sigma per sqrt(year), zero rate (premiums settle at expiry, so nothing is discounted). With
s = sigma sqrt(tau), x = ln(F/K), d1 = x/s + s/2, d2 = d1 - s and theta = +1 for a call, -1 for a
put:

    price = theta (F N(theta d1) - K N(theta d2))
    delta = dP/dF           = theta N(theta d1)
    gamma = d2P/dF2         = phi(d1) / (F s)
    vega  = dP/dsigma       = F phi(d1) sqrt(tau)               per 1.0 of vol, not per vol point
    theta = -dP/dtau        = -F phi(d1) sigma / (2 sqrt(tau))  per year
    vanna = d2P/dF dsigma   = -phi(d1) d2 / sigma
    volga = d2P/dsigma2     = vega d1 d2 / sigma

Numerics of black76():
- x = ln(F/K) is accurate relative to itself (log1p of the exact F - K near the money).
- The price is the value of the out-of-the-money option of the same strike plus, for the
  in-the-money one, its intrinsic value (put-call parity). The OTM value uses N() on the small
  side (scipy's ndtr of a mostly negative argument), so a deep OTM price is never a difference of
  numbers of size F. The one cancellation left is inside F N(d1) - K N(d2) itself, whose terms
  exceed it by about (1.25 + |d2|) / s: it costs digits only when s is tiny. (When N(d2) is
  subnormal, |d2| > 37.5, the value is below ~1e-300 F and only absolutely accurate.)
- delta is the same small-side probability (minus 1 for the ITM option); the other Greeks are
  products of phi(d1) = exp(-d1^2 / 2) / sqrt(2 pi), with no subtraction.
Checked against 40-digit mpmath: every output within 1e-9 relative + 1e-13 of its natural scale
(tests/differential/test_greeks_mpmath.py), with large margins over tau in [1e-5, 30],
sigma in [0.1%, 500%] and strikes up to 12 standard deviations out.

Domain: forward and strike must be finite and > 0 (ValueError otherwise). tau <= 0 or
sigma <= 0 gives the payoff: the intrinsic value, delta = theta 1[theta (F - K) > 0] (theta / 2
exactly at the money, the s -> 0 limit) and 0 for every other Greek. NaN tau or sigma gives NaN
outputs; an infinite one is outside the domain.

Implied volatility is keeper/implied_vol.py, which shares this module's input handling
(_prepare, _check_forward_strike, _log_ratio and the blocks).

Work is done in blocks of _BLOCK elements so temporaries stay in cache; there is no per-option
Python loop. Needs numpy and scipy (scipy.special.ndtr: numpy has no erf).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

__all__ = ["FloatArray", "Greeks", "black76", "portfolio_greeks"]

FloatArray = NDArray[np.float64]
Flat = FloatArray | float  # one block of a broadcast input: an array, or a scalar kept as is

_BLOCK = 1 << 15
_INV_SQRT_2PI = 0.3989422804014326779399460599343818684758586311649


class Greeks(NamedTuple):
    """Black-76 value and sensitivities, each a float64 array of the broadcast input shape."""

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    vanna: FloatArray
    volga: FloatArray


# ---------------------------------------------------------------------------------------------
# Input handling


def _prepare(
    values: tuple[ArrayLike, ...], is_call: ArrayLike
) -> tuple[tuple[int, ...], list[Flat], NDArray[np.float64] | float]:
    """Broadcast the inputs: shape, flat float64 arrays (scalars stay floats), call sign (+1/-1)."""
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    calls = np.asarray(is_call, dtype=bool)
    shape = np.broadcast_shapes(*(a.shape for a in arrays), calls.shape)
    flat: list[Flat] = [
        float(a) if a.ndim == 0 else np.broadcast_to(a, shape).reshape(-1) for a in arrays
    ]
    if calls.ndim == 0:
        return shape, flat, 1.0 if calls else -1.0
    sign = np.broadcast_to(calls, shape).reshape(-1).astype(np.float64)
    sign *= 2.0
    sign -= 1.0
    return shape, flat, sign


def _check_forward_strike(forward: Flat, strike: Flat) -> None:
    for name, value in (("forward", forward), ("strike", strike)):
        if not np.all(np.isfinite(value) & (np.asarray(value) > 0)):
            raise ValueError(f"{name} must be finite and > 0")


def _log_ratio(F: FloatArray, K: FloatArray) -> FloatArray:
    """ln(F/K) accurate relative to itself: sign(F - K) log1p(|F - K| / min(F, K)), where the
    difference is exact near the money (rounding F/K first would cost eps in absolute terms);
    ln F - ln K where the ratio overflows."""
    diff = F - K
    x = np.abs(diff)
    with np.errstate(over="ignore"):
        x /= np.minimum(F, K)
    np.log1p(x, out=x)
    np.copysign(x, diff, out=x)
    if not np.isfinite(x).all():
        x = np.where(np.isfinite(x), x, np.log(F) - np.log(K))
    return x


def _blocks(n: int) -> Iterator[tuple[int, int]]:
    """(lo, hi) bounds of the blocks of a flat array of n elements."""
    return ((lo, min(lo + _BLOCK, n)) for lo in range(0, n, _BLOCK))


def _cut(value: Flat, lo: int, hi: int) -> Flat:
    return value[lo:hi] if isinstance(value, np.ndarray) else value


def _full(value: Flat, n: int) -> FloatArray:
    return value if isinstance(value, np.ndarray) else np.full(n, value)


# ---------------------------------------------------------------------------------------------
# Black-76 and Greeks


def black76(
    forward: ArrayLike,
    strike: ArrayLike,
    tau: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
) -> Greeks:
    """Black-76 (r = 0) price and Greeks; the inputs broadcast together.

    Returns float64 arrays of the broadcast shape (0-d for all-scalar input). Raises ValueError if
    a forward or strike is not finite and > 0. tau <= 0 or sigma <= 0 gives the payoff value and
    payoff Greeks (see the module docstring).
    """
    shape, (F, K, T, S), sign = _prepare((forward, strike, tau, sigma), is_call)
    _check_forward_strike(F, K)
    n = int(np.prod(shape))
    out = np.empty((7, n))
    for lo, hi in _blocks(n):
        f, k, t, s, sg = (_full(_cut(v, lo, hi), hi - lo) for v in (F, K, T, S, sign))
        _black76_block(f, k, t, s, sg, out[:, lo:hi])
    return Greeks(*(row.reshape(shape) for row in out))


def _black76_block(
    F: FloatArray, K: FloatArray, T: FloatArray, S: FloatArray, sign: FloatArray, out: FloatArray
) -> None:
    """Fill out (7 rows, one block) with price and Greeks; split off expired / zero-vol options."""
    expired = (T <= 0) | (S <= 0)
    if not expired.any():
        _black76_live(F, K, T, S, sign, out)
        return
    live = ~expired
    _payoff(F[expired], K[expired], sign[expired], out, expired)
    if live.any():
        tmp = np.empty((7, int(live.sum())))
        _black76_live(F[live], K[live], T[live], S[live], sign[live], tmp)
        out[:, live] = tmp


def _payoff(
    F: FloatArray, K: FloatArray, sign: FloatArray, out: FloatArray, where: NDArray[np.bool_]
) -> None:
    """Expired or zero-vol options: intrinsic value, step delta (half at the money), zero rest."""
    moneyness = sign * (F - K)
    out[0, where] = np.maximum(moneyness, 0.0)
    out[1, where] = sign * np.where(moneyness > 0, 1.0, np.where(moneyness == 0, 0.5, 0.0))
    out[2:, where] = 0.0


def _black76_live(
    F: FloatArray, K: FloatArray, T: FloatArray, S: FloatArray, sign: FloatArray, out: FloatArray
) -> None:
    """tau > 0 and sigma > 0: OTM value on the small side + intrinsic; Greeks from phi(d1)."""
    price, delta, gamma, vega, theta, vanna, volga = out
    sqrt_t = np.sqrt(T)
    s = S * sqrt_t
    x = _log_ratio(F, K)
    d1 = x / s
    d1 += 0.5 * s
    d2 = d1 - s
    # eta = +1 where the call is the OTM option (x < 0), -1 where the put is (x >= 0); itm marks
    # the ITM option of the pair (sign != eta), worth intrinsic + the OTM value (parity).
    eta = np.copysign(1.0, x)
    np.negative(eta, out=eta)
    itm = sign != eta
    n1 = ndtr(eta * d1)
    np.multiply(F, n1, out=price)
    price -= K * ndtr(eta * d2)
    intrinsic = F - K
    intrinsic *= itm
    price -= intrinsic
    price *= eta  # eta (F N(eta d1) - K N(eta d2)) - itm sign (F - K), as itm sign = -eta
    # delta = sign N(sign d1): eta n1 for the OTM option, eta (n1 - 1) for the ITM one.
    np.subtract(n1, itm, out=delta)
    delta *= eta
    pdf = np.square(d1)
    pdf *= -0.5
    np.exp(pdf, out=pdf)
    pdf *= _INV_SQRT_2PI
    np.multiply(F, s, out=gamma)
    np.divide(pdf, gamma, out=gamma)
    np.multiply(F, pdf, out=vega)
    vega *= sqrt_t
    np.multiply(vega, S, out=theta)
    theta /= T
    theta *= -0.5
    d2 /= S
    np.multiply(pdf, d2, out=vanna)
    np.negative(vanna, out=vanna)
    np.multiply(vega, d1, out=volga)
    volga *= d2


# ---------------------------------------------------------------------------------------------
# Portfolio aggregation


def portfolio_greeks(
    sizes: ArrayLike,
    greeks: Greeks,
    groups: ArrayLike | None = None,
    n_groups: int | None = None,
) -> Greeks:
    """Size-weighted sums of per-option Greeks, in total or per group (account, underlying, ...).

    sizes: signed position sizes (long > 0), broadcast against the Greeks' arrays. groups:
    optional non-negative integer group id per option; the result then holds arrays of length
    n_groups (default max(groups) + 1), summed with np.bincount. Without groups each field is a
    0-d array holding the total. Deltas only add up within one underlying: encode
    (account, underlying) in the group id when a book spans several.
    """
    fields = [np.asarray(g, dtype=np.float64) for g in greeks]
    size = np.asarray(sizes, dtype=np.float64)
    shape = np.broadcast_shapes(size.shape, *(f.shape for f in fields))
    weights = np.broadcast_to(size, shape).reshape(-1)
    flat = [np.broadcast_to(f, shape).reshape(-1) for f in fields]
    if groups is None:
        return Greeks(*(np.asarray(weights @ f) for f in flat))
    ids = np.broadcast_to(np.asarray(groups), shape).reshape(-1)
    if not np.issubdtype(ids.dtype, np.integer) or (ids.size and ids.min() < 0):
        raise ValueError("groups must be non-negative integers")
    length = int(n_groups) if n_groups is not None else int(ids.max(initial=-1)) + 1
    if ids.size and ids.max() >= length:
        raise ValueError("a group id is >= n_groups")
    return Greeks(
        *(
            np.bincount(ids, weights=weights * f, minlength=length).astype(np.float64, copy=False)
            for f in flat
        )
    )
