"""Optimal order splitting across constant-product pools with fees (pure, vectorized numpy).

Model. Pool i holds reserves x_i (token in) and y_i (token out) and charges a fee f_i on the
input; with g_i = 1 - f_i, selling a_i returns

    out_i(a_i) = y_i * g_i * a_i / (x_i + g_i * a_i)                (contracts/venues/, unrounded)

which is concave with marginal output out_i'(a) = g_i x_i y_i / (x_i + g_i a)^2, starting at the
pool's initial marginal price m_i = g_i y_i / x_i. Maximising sum_i out_i(a_i) subject to
sum_i a_i = A, a_i >= 0 (KKT) equalises the marginal outputs of the pools that get something at
a common level lambda, and gives nothing to a pool whose initial marginal price is at most
lambda:

    a_i = (sqrt(g_i x_i y_i / lambda) - x_i) / g_i = sqrt(x_i y_i / g_i) * s - x_i / g_i,
    s = 1 / sqrt(lambda) = (A + sum_act x_i / g_i) / sum_act sqrt(x_i y_i / g_i).

The active set is a prefix of the pools sorted by m_i (descending): pool k is active iff
sqrt(m_k) * s_k > 1 with s_k computed on the first k pools, i.e. iff the order exceeds the
threshold sum_{j<k} (x_j/g_j) (sqrt(m_j/m_k) - 1). Everything is closed form: one sort and a few
O(n^2) sums per order (n = number of pools), arranged without cancellation (see
`optimal_split`), so every leg is exact to a few float64 ulps of its own size; the legs sum to
the amount (the last ulps of residual go to the largest leg).

Units. Amounts and reserves are in any common unit (token wei or whole tokens) per side; fees are
fractions (0.003 = 30 bps = `fee_bps / 10_000`). Prices are token-out per token-in.

Price impact of a split: 1 - (amount_out / amount_in) / p_ref with p_ref = max_i m_i, the best
fee-inclusive marginal price (what an infinitesimal order gets). It excludes fees: zero for an
infinitesimal order, and for one pool it is g a / (x + g a).

Every function takes arrays: reserves and fees along the last axis (one entry per pool), with
optional leading batch axes (one entry per order) broadcast against the amounts.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

BPS = 10_000


class Quote(NamedTuple):
    """Expected result of a split (arrays over the batch axes, or floats for one order)."""

    amount_out: FloatArray
    average_price: FloatArray
    price_impact: FloatArray


def _pools(
    reserves_in: npt.ArrayLike, reserves_out: npt.ArrayLike, fees: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = np.asarray(reserves_in, dtype=np.float64)
    y = np.asarray(reserves_out, dtype=np.float64)
    f = np.asarray(fees, dtype=np.float64)
    x, y, f = np.broadcast_arrays(x, y, f)
    if x.ndim == 0:
        raise ValueError("reserves need a pool axis (the last axis)")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("reserves must be finite")
    if np.any(x < 0) or np.any(y < 0):
        raise ValueError("reserves must be non-negative")
    if np.any(f < 0) or np.any(f >= 1) or not np.all(np.isfinite(f)):
        raise ValueError("fees must be fractions in [0, 1)")
    return x, y, f


def marginal_prices(
    reserves_in: npt.ArrayLike, reserves_out: npt.ArrayLike, fees: npt.ArrayLike
) -> FloatArray:
    """Initial marginal price g*y/x of each pool (0 for a pool without liquidity)."""
    x, y, f = _pools(reserves_in, reserves_out, fees)
    live = (x > 0) & (y > 0)
    return np.where(live, (1.0 - f) * y / np.where(live, x, 1.0), 0.0)


def amount_out(
    amounts_in: npt.ArrayLike,
    reserves_in: npt.ArrayLike,
    reserves_out: npt.ArrayLike,
    fees: npt.ArrayLike,
) -> FloatArray:
    """Unrounded output of each pool for its leg: y*g*a / (x + g*a) (0 for a zero leg)."""
    x, y, f = _pools(reserves_in, reserves_out, fees)
    a = np.asarray(amounts_in, dtype=np.float64)
    if np.any(a < 0):
        raise ValueError("amounts must be non-negative")
    ga = (1.0 - f) * a
    den = x + ga
    return np.where(ga > 0, y * ga / np.where(den > 0, den, 1.0), 0.0)


def amount_out_exact(amount_in: int, reserve_in: int, reserve_out: int, fee_bps: int) -> int:
    """The pool contract's integer output, bit for bit.

    floor(a * (1e4 - fee) * y / (x * 1e4 + a * (1e4 - fee))), 0 for a zero input or reserve.
    """
    if amount_in == 0 or reserve_in == 0:
        return 0
    a_fee = amount_in * (BPS - fee_bps)
    return a_fee * reserve_out // (reserve_in * BPS + a_fee)


def _sorted_pools(
    x: FloatArray, y: FloatArray, f: FloatArray
) -> tuple[
    npt.NDArray[np.intp], npt.NDArray[np.bool_], FloatArray, FloatArray, FloatArray, FloatArray
]:
    """Pools sorted by initial marginal price (descending) along the last axis.

    Returns (order, live, w = x/g, m = g*y/x, sqrt(m), thresholds) in sorted order, where
    threshold_k = sum_{j<k} w_j (sqrt(m_j / m_k) - 1) is the order size at which pool k starts to
    get a share (a sum of non-negative terms: no cancellation); dead pools get +inf.
    """
    g = 1.0 - f
    live = (x > 0) & (y > 0)
    safe_x = np.where(live, x, 1.0)
    m = np.where(live, g * y / safe_x, 0.0)
    order = np.argsort(-m, axis=-1, kind="stable")
    xs, gs, ms, ls = (np.take_along_axis(v, order, axis=-1) for v in (x, g, m, live))
    w = np.where(ls, xs / gs, 0.0)
    sm = np.sqrt(ms)
    n = x.shape[-1]
    below = np.tril(np.ones((n, n), dtype=bool), k=-1)  # [k, j]: j < k
    safe_sm = np.where(ls, sm, 1.0)
    ratio = sm[..., None, :] / safe_sm[..., :, None] - 1.0  # [k, j] = sqrt(m_j/m_k) - 1
    thresholds = np.sum(np.where(below, w[..., None, :] * ratio, 0.0), axis=-1)
    thresholds = np.where(ls, thresholds, np.inf)
    return order, ls, w, ms, sm, thresholds


def optimal_split(
    amount_in: npt.ArrayLike,
    reserves_in: npt.ArrayLike,
    reserves_out: npt.ArrayLike,
    fees: npt.ArrayLike,
) -> FloatArray:
    """The output-maximising split of `amount_in` across the pools (closed form, see the module).

    Computed without cancellation: with w_i = x_i/g_i and sorted initial marginal prices m_i,
    pool k is active iff amount_in exceeds its threshold sum_{j<k} w_j (sqrt(m_j/m_k) - 1), and
    an active leg is a_i = w_i (sqrt(m_i) A + sum_act w_j (sqrt(m_i) - sqrt(m_j))) / S with
    S = sum_act w_j sqrt(m_j): the same closed form as sqrt(x y / g) s - x/g, rearranged so a
    small leg is not the difference of two reserve-sized numbers.

    Args:
        amount_in: total input, shape () or the batch shape.
        reserves_in: input-token reserve per pool, shape (..., n_pools).
        reserves_out: output-token reserve per pool, same shape.
        fees: fee per pool as a fraction in [0, 1), broadcastable to the reserves.

    Returns:
        The input per pool, shape (..., n_pools), non-negative, summing to `amount_in`; pools
        whose initial marginal price g*y/x is at most the common marginal level get exactly 0.

    Raises:
        ValueError: on negative or non-finite inputs, fees outside [0, 1), or a positive amount
            with no pool holding both reserves.
    """
    x, y, f = _pools(reserves_in, reserves_out, fees)
    total = np.asarray(amount_in, dtype=np.float64)
    if np.any(total < 0) or not np.all(np.isfinite(total)):
        raise ValueError("amount_in must be finite and non-negative")
    shape = np.broadcast_shapes(x.shape[:-1], total.shape)
    x, y, f = (np.broadcast_to(v, (*shape, x.shape[-1])) for v in (x, y, f))
    total = np.broadcast_to(total, shape)
    if np.any((total > 0) & ~np.any((x > 0) & (y > 0), axis=-1)):
        raise ValueError("no pool has liquidity")

    order, _, w, _, sm, thresholds = _sorted_pools(x, y, f)
    active = total[..., None] > thresholds
    wa = np.where(active, w, 0.0)
    big_s = np.sum(wa * sm, axis=-1, keepdims=True)
    diff = sm[..., :, None] - sm[..., None, :]  # [i, j] = sqrt(m_i) - sqrt(m_j)
    numerator = sm * total[..., None] + np.sum(wa[..., None, :] * diff, axis=-1)
    safe_s = np.where(big_s > 0, big_s, 1.0)
    legs_sorted = np.where(active, np.maximum(w * numerator / safe_s, 0.0), 0.0)

    legs = np.empty_like(legs_sorted)
    np.put_along_axis(legs, order, legs_sorted, axis=-1)
    # Exact budget: the float residual (a few ulps) goes to the largest leg.
    residual = np.where(np.any(active, axis=-1), total - legs.sum(axis=-1), 0.0)
    biggest = np.argmax(legs, axis=-1)[..., None]
    np.put_along_axis(
        legs, biggest, np.take_along_axis(legs, biggest, axis=-1) + residual[..., None], axis=-1
    )
    return legs


def quote(
    amounts_in: npt.ArrayLike,
    reserves_in: npt.ArrayLike,
    reserves_out: npt.ArrayLike,
    fees: npt.ArrayLike,
) -> Quote:
    """Expected output, average price and price impact of a split (per-pool inputs).

    Args:
        amounts_in: input per pool, shape (..., n_pools).
        reserves_in, reserves_out, fees: as in `optimal_split`.

    Returns:
        Quote(amount_out, average_price = out/in, price_impact = 1 - average/p_ref) with p_ref
        the best initial marginal price g*y/x; for a zero order, average_price = p_ref and
        impact 0. Unrounded (the pools round each leg's output down by < 1 unit).
    """
    outs = amount_out(amounts_in, reserves_in, reserves_out, fees)
    total_in = np.sum(np.broadcast_to(np.asarray(amounts_in, np.float64), outs.shape), axis=-1)
    total_out = outs.sum(axis=-1)
    p_ref = marginal_prices(reserves_in, reserves_out, fees).max(axis=-1)
    p_ref = np.broadcast_to(p_ref, total_out.shape)
    avg = np.where(total_in > 0, total_out / np.where(total_in > 0, total_in, 1.0), p_ref)
    impact = np.where(
        (total_in > 0) & (p_ref > 0), 1.0 - avg / np.where(p_ref > 0, p_ref, 1.0), 0.0
    )
    # 0-d arrays become numpy scalars (floats) for a single order.
    return Quote(total_out[()], avg[()], impact[()])


def max_amount_for_impact(
    reserves_in: npt.ArrayLike,
    reserves_out: npt.ArrayLike,
    fees: npt.ArrayLike,
    max_impact: npt.ArrayLike,
) -> FloatArray:
    """The largest order whose optimal split has price impact at most `max_impact` (closed form).

    On the active prefix of k pools (sorted by m_i, w_i = x_i/g_i), an order A split optimally
    pays out(A) = Y - S^2 / (A + X) with X = sum w, Y = sum y, S = sum w sqrt(m). Impact b means
    out = c A with c = (1 - b) m_1, i.e. c A^2 - B A - D = 0 where, written without
    cancellation, B = Y - c X = sum w_j (m_j - m_1) + b m_1 X and
    D = X Y - S^2 = sum_{i<j} w_i w_j (sqrt(m_i) - sqrt(m_j))^2 >= 0 (Lagrange's identity).
    Its non-negative root is the answer for the first prefix whose root does not pass the next
    pool's threshold (impact grows with the order, so that prefix is the active one).

    Args:
        reserves_in, reserves_out, fees: as in `optimal_split` (pool axis last).
        max_impact: impact budget in [0, 1), broadcast over the batch axes.

    Returns:
        The amount (same units as reserves_in), shape of the batch axes.
    """
    x, y, f = _pools(reserves_in, reserves_out, fees)
    b = np.asarray(max_impact, dtype=np.float64)
    if np.any(b < 0) or np.any(b >= 1) or not np.all(np.isfinite(b)):
        raise ValueError("max_impact must be in [0, 1)")
    shape = np.broadcast_shapes(x.shape[:-1], b.shape)
    x, y, f = (np.broadcast_to(v, (*shape, x.shape[-1])) for v in (x, y, f))
    b = np.broadcast_to(b, shape)[..., None]
    if not np.all(np.any((x > 0) & (y > 0), axis=-1)):
        raise ValueError("no pool has liquidity")

    _, ls, w, ms, sm, thresholds = _sorted_pools(x, y, f)
    m1 = ms[..., :1]
    big_x = np.cumsum(w, axis=-1)
    big_b = np.cumsum(np.where(ls, w * (ms - m1), 0.0), axis=-1) + b * m1 * big_x
    n = x.shape[-1]
    below = np.tril(np.ones((n, n), dtype=bool), k=-1)  # [j, i]: i < j
    pair = w[..., None, :] * w[..., :, None] * (sm[..., None, :] - sm[..., :, None]) ** 2
    big_d = np.cumsum(np.sum(np.where(below, pair, 0.0), axis=-1), axis=-1)
    c = (1.0 - b) * m1
    root = np.sqrt(big_b * big_b + 4.0 * c * big_d)
    plus = big_b >= 0
    amounts = np.where(
        plus,
        (big_b + root) / (2.0 * c),
        2.0 * big_d / np.where(plus, 1.0, root - big_b),
    )
    next_threshold = np.concatenate([thresholds[..., 1:], np.full((*shape, 1), np.inf)], axis=-1)
    fits = ls & (amounts <= next_threshold)
    k = np.argmax(fits, axis=-1)[..., None]
    amount = np.take_along_axis(amounts, k, axis=-1)[..., 0]
    return np.where(b[..., 0] > 0, np.maximum(amount, 0.0), 0.0)


def slice_order(
    amount_in: float,
    reserves_in: npt.ArrayLike,
    reserves_out: npt.ArrayLike,
    fees: npt.ArrayLike,
    max_impact: float,
    max_blocks: int | None = None,
) -> FloatArray:
    """Split an order too large for one block into equal per-block parts under an impact budget.

    Model: between blocks, arbitrage restores every pool's price and depth to its pre-trade
    state (the pools "refill" at the same price), so each block faces the same pools. Each
    block's part is routed with `optimal_split`; a part of at most
    `max_amount_for_impact(..., max_impact)` keeps that block's price impact within
    `max_impact`. The order is cut into the fewest such parts, of equal size: since one
    block's cost (input minus output at p_ref) is convex in its size, equal parts minimise the
    total cost for that number of blocks.

    Args:
        amount_in: total input (one order).
        reserves_in, reserves_out, fees: one set of pools, shape (n_pools,).
        max_impact: per-block impact budget in (0, 1).
        max_blocks: optional cap on the number of blocks.

    Returns:
        Per-block amounts, shape (n_blocks,), summing to amount_in (one block when it fits).

    Raises:
        ValueError: on a non-positive budget, or when more than `max_blocks` blocks are needed.
    """
    if not 0.0 < max_impact < 1.0:
        raise ValueError("max_impact must be in (0, 1)")
    if amount_in < 0 or not math.isfinite(amount_in):
        raise ValueError("amount_in must be finite and non-negative")
    x = np.asarray(reserves_in, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("slice_order takes one set of pools (1-D reserves)")
    cap = float(max_amount_for_impact(reserves_in, reserves_out, fees, max_impact))
    n_blocks = max(1, math.ceil(amount_in / cap)) if cap > 0 else 0
    if n_blocks == 0 or (max_blocks is not None and n_blocks > max_blocks):
        raise ValueError(f"order needs {n_blocks or 'unbounded'} blocks, more than max_blocks")
    parts = np.full(n_blocks, amount_in / n_blocks)
    parts[-1] = amount_in - parts[:-1].sum()
    return parts


def to_integer_amounts(split: npt.ArrayLike, amount_in: int) -> list[int]:
    """Round a float split to integer legs summing exactly to `amount_in` (for `swap_split`).

    Each leg is floored; the remainder goes to the largest leg. Legs are in token units.
    """
    legs = [max(0, int(v)) for v in np.asarray(split, dtype=np.float64).tolist()]
    if not legs:
        raise ValueError("empty split")
    biggest = max(range(len(legs)), key=legs.__getitem__)
    rest = amount_in - sum(legs)
    if legs[biggest] + rest < 0:
        raise ValueError("split exceeds amount_in")
    legs[biggest] += rest
    return legs
