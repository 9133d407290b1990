"""Vectorized Black-76 (r = 0) implied volatility: `implied_vol(price, forward, strike, tau,
is_call)`, the inverse of keeper.black76's price in sigma.

implied_vol() normalizes every option to the OTM call with log-moneyness -|x| and normalized
price beta = time value / sqrt(FK) (bounded by b_max = exp(-|x|/2)), and solves b(s) = beta for
s = sigma sqrt(tau):
1. an initial guess from a table of ln s on a grid in (ln|x|, ln(-ln(beta / b_max))), where
   ln s is smooth: bilinear interpolation, within ~3e-5 (median) and 6e-4 (worst) of the root.
   The table (1M doubles, 8 MB) is built once, on first use, in ~0.2 s.
2. one third-order Householder step on g(s) = ln b(s), or ln(b_max - b(s)) when
   beta > b_max / 2, each evaluated without cancellation; its error is of order the 4th power of
   the guess's, so a step below 3e-4 s leaves < ~1e-14 s.
3. options whose step was larger (~4% of a listed chain) take further safeguarded steps, as a
   shrinking batch; so do options outside the table (|x| > 54, or prices within ~1e-13 of
   their bound or below exp(-587) of it, relatively), which start instead from P. Jaeckel's
   "Let's Be Rational" (2015) rational-cubic guess.
Errors: sigma within 1e-10 absolute wherever |d1| < 4, up to the price's own rounding
(eps * price / vega, which matters only deep in the money).

Domain and input handling are keeper.black76's (forward and strike finite and > 0, inputs
broadcast together). Work is done in blocks of keeper.black76's block size; there is no
per-option Python loop. Needs numpy and scipy (scipy.special.ndtr / ndtri).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr, ndtri

from keeper.black76 import (
    _INV_SQRT_2PI,
    FloatArray,
    _blocks,
    _check_forward_strike,
    _cut,
    _full,
    _log_ratio,
    _prepare,
)

__all__ = ["implied_vol"]

_SQRT_PI_OVER_2 = 1.253314137315500251207882642405522626503493370305
_SQRT_3 = 1.732050807568877293527446341505872366942805253810
_INV_SQRT_3 = 0.577350269189625764509148780501957455647601751270
_TWO_PI = 6.283185307179586476925286766559005768394338798750
_TWO_PI_OVER_SQRT_27 = 1.209199576156145233729385505094770488189377498728
_PI_OVER_6 = 0.523598775598298873077107230546583814032861566563
_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)
_HUGE = float(np.finfo(np.float64).max)
# Rational cubic control parameter bounds (Delbourgo-Gregory, as in Let's Be Rational).
_R_MIN = -(1.0 - np.sqrt(_EPS))
_R_MAX = 2.0 / (_EPS * _EPS)
# A Householder(3) step below this (relative to s) leaves an error of order its 4th power (<1e-14).
_CONVERGED_STEP = 3e-4
_EXTRA_STEPS = 8


def implied_vol(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    tau: ArrayLike,
    is_call: ArrayLike,
) -> FloatArray:
    """Black-76 (r = 0) implied volatility of option prices; the inputs broadcast together.

    NaN where the price is outside the no-arbitrage bounds (below intrinsic, or at/above F for a
    call, K for a put), or not finite, or tau is not finite and > 0; 0 where the price equals
    intrinsic. Raises ValueError if a forward or strike is not finite and > 0.
    """
    shape, (P, F, K, T), sign = _prepare((price, forward, strike, tau), is_call)
    _check_forward_strike(F, K)
    n = int(np.prod(shape))
    out = np.empty(n)
    for lo, hi in _blocks(n):
        parts = [_full(_cut(v, lo, hi), hi - lo) for v in (P, F, K, T, sign)]
        out[lo:hi] = _implied_vol_block(*parts)
    return out.reshape(shape)


def _implied_vol_block(
    P: FloatArray, F: FloatArray, K: FloatArray, T: FloatArray, sign: FloatArray
) -> FloatArray:
    """Normalize to the OTM call (x <= 0), solve for s = sigma sqrt(tau), scale back."""
    # Time value; the bounds intrinsic <= P < F (call) or K (put) read 0 <= tv < min(F, K).
    tv = F - K
    tv *= sign
    np.maximum(tv, 0.0, out=tv)
    np.subtract(P, tv, out=tv)
    ok = tv >= 0
    ok &= tv < np.minimum(F, K)
    ok &= T > 0
    ok &= np.isfinite(T)
    beta = tv / np.sqrt(F * K)  # the normalized price of the OTM call
    x = _log_ratio(F, K)
    np.abs(x, out=x)
    np.negative(x, out=x)
    solve = ok & (beta > 0)
    if solve.all():
        s = _normalized_implied_vol(beta, x)
        s /= np.sqrt(T)
        return s
    result = np.full(beta.shape, np.nan)
    result[ok & (beta <= 0)] = 0.0
    idx = np.flatnonzero(solve)
    if idx.size:
        result[idx] = _normalized_implied_vol(beta[idx], x[idx]) / np.sqrt(T[idx])
    return result


# Let's Be Rational (P. Jaeckel, 2015): the initial guess for options outside the table, and for
# building the table. Jaeckel's code carries this notice: "Copyright (c) 2013-2014 Peter Jaeckel.
# Permission to use, copy, modify, and distribute this software is freely granted, provided that
# this notice is preserved."


def _nb(x: FloatArray, s: FloatArray, ex2: FloatArray, emx2: FloatArray) -> FloatArray:
    """Normalized OTM call value b(x, s) for x <= 0, s > 0."""
    h = x / s
    t = 0.5 * s
    b = ndtr(h + t) * ex2
    b -= ndtr(h - t) * emx2
    return np.maximum(b, 0.0, out=b)


def _vega(x: FloatArray, s: FloatArray) -> FloatArray:
    h = x / s
    return _INV_SQRT_2PI * np.exp(-0.5 * (h * h + 0.25 * s * s))


def _rational_cubic(
    xv: FloatArray,
    x_l: FloatArray,
    x_r: FloatArray,
    y_l: FloatArray,
    y_r: FloatArray,
    d_l: FloatArray,
    d_r: FloatArray,
    r: FloatArray,
) -> FloatArray:
    """Delbourgo-Gregory rational cubic through (x_l, y_l), (x_r, y_r) with end slopes d_l, d_r."""
    h = x_r - x_l
    t = (xv - x_l) / h
    omt = 1.0 - t
    t2 = t * t
    omt2 = omt * omt
    num = y_r * t2 * t + (r * y_r - h * d_r) * t2 * omt + (r * y_l + h * d_l) * t * omt2
    num += y_l * omt2 * omt
    cubic = num / (1.0 + (r - 3.0) * t * omt)
    linear = y_r * t + y_l * omt
    out = np.where(r >= _R_MAX, linear, cubic)
    return np.where(np.abs(h) > 0, out, 0.5 * (y_l + y_r))


def _min_control(
    d_l: FloatArray, d_r: FloatArray, slope: FloatArray, prefer_shape: bool
) -> FloatArray:
    """Smallest control parameter keeping the interpolant monotone/convex (Delbourgo-Gregory)."""
    monotonic = (d_l * slope >= 0) & (d_r * slope >= 0)
    convex = (d_l <= slope) & (slope <= d_r)
    concave = (d_l >= slope) & (slope >= d_r)
    fill = _R_MAX if prefer_shape else -_HUGE
    r1 = np.where(monotonic, np.where(slope != 0, (d_r + d_l) / slope, fill), -_HUGE)
    d_r_m_d_l = d_r - d_l
    d_r_m_s = d_r - slope
    s_m_d_l = slope - d_l
    both = (s_m_d_l != 0) & (d_r_m_s != 0)
    r2_cc = np.where(
        both, np.maximum(np.abs(d_r_m_d_l / d_r_m_s), np.abs(d_r_m_d_l / s_m_d_l)), fill
    )
    r2 = np.where(convex | concave, r2_cc, np.where(monotonic & prefer_shape, _R_MAX, -_HUGE))
    r = np.maximum(_R_MIN, np.maximum(r1, r2))
    return np.where(monotonic | convex | concave, r, _R_MIN)


def _control(
    x_l: FloatArray,
    x_r: FloatArray,
    y_l: FloatArray,
    y_r: FloatArray,
    d_l: FloatArray,
    d_r: FloatArray,
    second: FloatArray,
    right: bool,
    prefer_shape: bool,
) -> FloatArray:
    """Convex control parameter fitting the second derivative at the right or left end."""
    h = x_r - x_l
    numerator = 0.5 * h * second + (d_r - d_l)
    slope = (y_r - y_l) / h
    denominator = (d_r - slope) if right else (slope - d_l)
    r = np.where(
        np.abs(denominator) < _TINY,
        np.where(numerator > 0, _R_MAX, _R_MIN),
        numerator / np.where(denominator == 0, 1.0, denominator),
    )
    r = np.where(np.abs(numerator) < _TINY, 0.0, r)
    return np.maximum(r, _min_control(d_l, d_r, slope, prefer_shape))


def _lower_guess(beta: FloatArray, x: FloatArray, s_l: FloatArray, b_l: FloatArray) -> FloatArray:
    """Lowest branch (beta < b_l): rational cubic in the lower map f, then invert the map."""
    ax = -x
    z = _INV_SQRT_3 * ax / s_l
    y = z * z
    s2 = s_l * s_l
    big_phi = ndtr(-z)
    small_phi = _INV_SQRT_2PI * np.exp(-0.5 * y)
    fpp = (
        _PI_OVER_6 * y / (s2 * s_l) * big_phi
        * (8 * _SQRT_3 * s_l * ax + (3 * s2 * (s2 - 8) - 8 * x * x) * big_phi / small_phi)
        * np.exp(2 * y + 0.25 * s2)
    )  # fmt: skip
    big_phi2 = big_phi * big_phi
    fp = _TWO_PI * y * big_phi2 * np.exp(y + 0.125 * s2)
    f_l = _TWO_PI_OVER_SQRT_27 * ax * (big_phi2 * big_phi)
    zeros = np.zeros_like(beta)
    ones = np.ones_like(beta)
    r = _control(zeros, b_l, zeros, f_l, ones, fp, fpp, right=True, prefer_shape=True)
    f = _rational_cubic(beta, zeros, b_l, zeros, f_l, ones, fp, r)
    t = beta / b_l
    f = np.where(f > 0, f, (f_l * t + b_l * (1 - t)) * t)
    arg = np.cbrt(f / (_TWO_PI_OVER_SQRT_27 * ax))
    return np.abs(x / (_SQRT_3 * ndtri(arg)))


def _upper_guess(
    beta: FloatArray, x: FloatArray, s_h: FloatArray, b_h: FloatArray, b_max: FloatArray
) -> FloatArray:
    """Highest branch (beta > b_h): rational cubic in the upper map f = N(-s/2), then invert."""
    f_h = ndtr(-0.5 * s_h)
    w = (x / s_h) ** 2
    fp = -0.5 * np.exp(0.5 * w)
    fpp = _SQRT_PI_OVER_2 * np.exp(w + 0.125 * s_h * s_h) * w / s_h
    zeros = np.zeros_like(beta)
    half = np.full_like(beta, -0.5)
    finite = np.abs(fpp) < np.sqrt(_HUGE)
    r = _control(b_h, b_max, f_h, zeros, fp, half, np.where(finite, fpp, 0.0), False, True)
    f = np.where(finite, _rational_cubic(beta, b_h, b_max, f_h, zeros, fp, half, r), -1.0)
    h = b_max - b_h
    t = (beta - b_h) / h
    f = np.where(f > 0, f, (f_h * (1 - t) + 0.5 * h * t) * (1 - t))
    return -2.0 * ndtri(f)


def _lbr_guess(beta: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Let's Be Rational initial guess for b(x, s) = beta (x <= 0): (s, bracket left, right)."""
    ex2 = np.exp(0.5 * x)
    emx2 = 1.0 / ex2
    b_max = ex2
    s_c = np.sqrt(-2.0 * x)
    # At s_c (the inflection point of b in s), d1 = 0: b_c = e^{x/2}/2 - e^{-x/2} N(-s_c).
    b_c = 0.5 * ex2 - emx2 * ndtr(-s_c)
    v_c = _INV_SQRT_2PI * ex2
    lower = beta < b_c
    s_lh = np.where(lower, s_c - b_c / v_c, s_c + (b_max - b_c) / v_c)
    b_lh = _nb(x, s_lh, ex2, emx2)
    v_lh = _vega(x, s_lh)
    # Middle branches: rational cubic in (b, s) between the anchor and s_c, zero curvature at s_c.
    x_l = np.where(lower, b_lh, b_c)
    x_r = np.where(lower, b_c, b_lh)
    y_l = np.where(lower, s_lh, s_c)
    y_r = np.where(lower, s_c, s_lh)
    d_l = np.where(lower, 1.0 / v_lh, 1.0 / v_c)
    d_r = np.where(lower, 1.0 / v_c, 1.0 / v_lh)
    zero = np.zeros_like(beta)
    r = np.where(
        lower,
        _control(x_l, x_r, y_l, y_r, d_l, d_r, zero, right=True, prefer_shape=False),
        _control(x_l, x_r, y_l, y_r, d_l, d_r, zero, right=False, prefer_shape=False),
    )
    s = _rational_cubic(beta, x_l, x_r, y_l, y_r, d_l, d_r, r)
    s_left, s_right = y_l.copy(), y_r.copy()
    low = np.flatnonzero(lower & (beta < b_lh))
    if low.size:
        s[low] = _lower_guess(beta[low], x[low], s_lh[low], b_lh[low])
        s_left[low] = 0.0
        s_right[low] = s_lh[low]
    high = np.flatnonzero(~lower & (beta > b_lh))
    if high.size:
        s[high] = _upper_guess(beta[high], x[high], s_lh[high], b_lh[high], b_max[high])
        s_left[high] = s_lh[high]
        s_right[high] = np.inf
    return s, s_left, s_right


# The guess tables: ln s on uniform grids in u = ln|x| and v = ln(lambda), where
# lambda = -ln(beta / b_max) counts the e-folds between the price and its bound. ln s is smooth
# with O(1) derivatives in these coordinates (ln s ~ u - v/2 in the lower tail, ~ ln(-v)/2 near
# the bound, flat in u near the money), so bilinear interpolation on the fine grid (step 1/32)
# lands within ~3e-5 of the root (median; 6e-4 at worst). Built once, on first use (~0.2 s): a
# coarse grid (step 1/8) from the Let's Be Rational guess iterated to convergence, then the fine
# grid from the coarse one (within 1%) and two Householder steps.
_U_MIN, _U_MAX = -23.0, 4.0
_V_MIN, _V_MAX = -30.0, 6.375
_COARSE, _FINE = 8, 32  # grid points per unit of u and v


class _Table(NamedTuple):
    values: FloatArray  # ln s, row-major in (u, v)
    per_unit: int
    n_u: int
    n_v: int


_TABLES: dict[int, _Table] = {}


def _grid(per_unit: int) -> tuple[FloatArray, FloatArray, int, int]:
    """The (x, beta) of a grid's nodes, and its shape."""
    u = np.linspace(_U_MIN, _U_MAX, round((_U_MAX - _U_MIN) * per_unit) + 1)
    v = np.linspace(_V_MIN, _V_MAX, round((_V_MAX - _V_MIN) * per_unit) + 1)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    x = -np.exp(uu.ravel())
    beta = np.exp(0.5 * x - np.exp(vv.ravel()))
    return x, beta, u.size, v.size


def _guess_table(per_unit: int = _FINE) -> _Table:
    if per_unit not in _TABLES:
        x, beta, n_u, n_v = _grid(per_unit)
        with np.errstate(all="ignore"):
            if per_unit == _COARSE:
                s, s_left, s_right = _lbr_guess(beta, x)
                s = _solve(s, beta, x, (s_left, s_right), steps=0, extra=3 * _EXTRA_STEPS)
            else:
                coarse = _guess_table(_COARSE)
                s = np.empty_like(x)
                for lo, hi in _blocks(x.size):
                    guess, _ = _table_guess(beta[lo:hi], x[lo:hi], coarse)
                    s[lo:hi] = _solve(guess, beta[lo:hi], x[lo:hi], None, 2, _EXTRA_STEPS)
        _TABLES[per_unit] = _Table(np.log(s), per_unit, n_u, n_v)
    return _TABLES[per_unit]


def _table_guess(
    beta: FloatArray, x: FloatArray, table: _Table
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Bilinear table guess for s, and which elements lie inside the table's domain."""
    fu = np.abs(x)
    fv = 0.5 * fu
    np.log(fu, out=fu)
    fu -= _U_MIN
    fu *= table.per_unit
    fv += np.log(beta)
    np.negative(fv, out=fv)  # lambda = -(ln beta + |x| / 2)
    np.log(fv, out=fv)
    fv -= _V_MIN
    fv *= table.per_unit
    inside = fu <= table.n_u - 1
    inside &= fv >= 0
    inside &= fv <= table.n_v - 1
    np.clip(fu, 0.0, table.n_u - 1.000001, out=fu)
    np.clip(fv, 0.0, table.n_v - 1.000001, out=fv)
    i = fu.astype(np.intp)
    j = fv.astype(np.intp)
    fu -= i
    fv -= j
    i *= table.n_v
    i += j
    c00 = table.values.take(i)
    i += 1
    c01 = table.values.take(i)
    i += table.n_v
    c11 = table.values.take(i)
    i -= 1
    c10 = table.values.take(i)
    c01 -= c00
    c01 *= fv
    c00 += c01
    c11 -= c10
    c11 *= fv
    c10 += c11
    c10 -= c00
    c10 *= fu
    c00 += c10
    return np.exp(c00, out=c00), inside


def _normalized_implied_vol(beta: FloatArray, x: FloatArray) -> FloatArray:
    """s > 0 with b(x, s) = beta, for x <= 0 and 0 < beta < exp(x/2)."""
    with np.errstate(all="ignore"):
        s, inside = _table_guess(beta, x, _guess_table())
        if inside.all():
            return _solve(s, beta, x, None, steps=1, extra=_EXTRA_STEPS)
        s_left = np.zeros_like(s)
        s_right = np.full_like(s, np.inf)
        out = np.flatnonzero(~inside)
        s[out], s_left[out], s_right[out] = _lbr_guess(beta[out], x[out])
        return _solve(s, beta, x, (s_left, s_right), steps=1, extra=_EXTRA_STEPS)


class _Objective(NamedTuple):
    """Per-option constants of g(s) = ln y(s) - ln y*, y = b (flip = 1) or b_max - b (-1)."""

    x: FloatArray
    ex2: FloatArray  # e^{x/2} = b_max
    fem: FloatArray  # flip e^{-x/2}
    flip: FloatArray
    vega0: FloatArray  # phi(0) e^{x/2}: b'(s) = vega0 exp(-d1^2 / 2)
    ln_target: FloatArray


def _objective(beta: FloatArray, x: FloatArray) -> _Objective:
    ex2 = np.exp(0.5 * x)
    upper = beta > 0.5 * ex2
    flip = 1.0 - 2.0 * upper
    ln_target = np.log(np.where(upper, ex2 - beta, beta))
    return _Objective(x, ex2, flip / ex2, flip, _INV_SQRT_2PI * ex2, ln_target)


def _solve(
    s: FloatArray,
    beta: FloatArray,
    x: FloatArray,
    bracket: tuple[FloatArray, FloatArray] | None,
    steps: int,
    extra: int,
) -> FloatArray:
    """`steps` Householder steps for every option, then up to `extra` safeguarded ones for those
    whose last step was not yet below _CONVERGED_STEP * s (a shrinking batch)."""
    obj = _objective(beta, x)
    step = np.full_like(s, np.inf)
    for _ in range(steps):
        s, step = _householder_step(s, obj)
    active = np.flatnonzero(~(np.abs(step) <= _CONVERGED_STEP * s))
    if bracket is None:
        bracket = (np.zeros_like(s), np.full_like(s, np.inf))
    for _ in range(extra):
        if not active.size:
            break
        sub = _Objective(*(field[active] for field in obj))
        s_act = _into_bracket(s[active], bracket[0][active], bracket[1][active])
        s_new, step = _householder_step(s_act, sub)
        s[active] = s_new
        active = active[~(np.abs(step) <= _CONVERGED_STEP * s_new)]
    return s


def _into_bracket(s: FloatArray, left: FloatArray, right: FloatArray) -> FloatArray:
    """Replace iterates outside (left, right), or not finite, by a point inside."""
    inside = (s > left) & (s < right)
    if inside.all():
        return s
    mid = np.where(np.isinf(right), 2.0 * left + 1.0, 0.5 * (left + right))
    return np.where(inside, s, mid)


def _householder_step(s: FloatArray, obj: _Objective) -> tuple[FloatArray, FloatArray]:
    """One third-order Householder step on g(s) = ln y(s) - ln y*; returns (new s, step).

    y = e^{x/2} N(flip d1) - flip e^{-x/2} N(d2) is b for flip = 1 and b_max - b for flip = -1,
    a small-side difference or a sum. With p = b'/y, B2 = b''/b' = d1 d2 / s and
    B3 = b'''/b' = B2^2 - 3 (x / s^2)^2 - 1/4: g' = flip p, g''/g' = B2 - flip p and
    g'''/g' = B3 - 3 flip p B2 + 2 p^2. The error after the step is of order (error before)^4.
    """
    d1 = obj.x / s
    d2 = 0.5 * s
    d1 += d2
    np.subtract(d1, s, out=d2)
    y = obj.flip * d1
    ndtr(y, out=y)
    y *= obj.ex2
    n2 = ndtr(d2)
    n2 *= obj.fem
    y -= n2
    p = np.square(d1)
    p *= -0.5
    np.exp(p, out=p)
    p *= obj.vega0
    p /= y
    # newton = -g/g' = -flip (ln y - ln y*) / p
    newton = np.log(y)
    newton -= obj.ln_target
    newton *= obj.flip
    newton /= p
    np.negative(newton, out=newton)
    b2 = d1 * d2
    b2 /= s
    q = obj.x / s
    q /= s
    q *= q
    q *= -3.0
    q -= 0.25
    q += b2 * b2  # B3
    p2 = np.square(p)
    p *= obj.flip  # flip p
    q -= 3.0 * p * b2
    p2 *= 2.0
    q += p2  # g'''/g'
    b2 -= p  # halley = g''/g'
    # step = newton (1 + halley newton / 2) / (1 + newton (halley + hh3 newton / 6))
    q *= newton
    q *= 1.0 / 6.0
    q += b2
    q *= newton
    q += 1.0
    b2 *= newton
    b2 *= 0.5
    b2 += 1.0
    step = np.multiply(newton, b2, out=newton)
    step /= q
    if not np.isfinite(step).all():
        # y underflowed, or b reached b_max: move half of s towards the root.
        step = np.where(np.isfinite(step), step, 0.5 * obj.flip * s)
    np.maximum(step, -0.5 * s, out=step)
    return s + step, step
