"""Delta hedging decisions for accounts hedged through the engine's swap (pure, no chain I/O).

A hedged account (a market maker) holds options and the underlying as collateral; its net delta
is the options' delta plus the underlying it holds (keeper.margin.account_greeks). The hedger
keeps the delta inside a band relative to the account's gross option size:

    ratio = |net delta| / gross,  gross = sum_p |q_p|   (units of the underlying)

and, when the ratio leaves the band, trades the underlying back to a net delta of zero through
MarginEngine.swap, split across constant-product pools with keeper.routing.optimal_split:

- net delta < 0 (short the underlying): buy `-delta` underlying with cash. The cash input that
  buys exactly that much is found by bisection on the split's output (vectorised over accounts);
  the legs are rounded to integers and the exact integer pool output is quoted.
- net delta > 0: sell `delta` underlying for cash, at most what the account holds (the engine
  has no short underlying; a clipped hedge is flagged).

`min_out` applies a slippage tolerance to the exact quote, so the engine's swap reverts rather
than executing at a worse price than planned.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from keeper.routing import BPS, amount_out, amount_out_exact, optimal_split, to_integer_amounts

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

__all__ = [
    "HedgeOrder",
    "cash_for_underlying",
    "delta_ratio",
    "needs_hedge",
    "plan_hedge",
]


def delta_ratio(net_delta: npt.ArrayLike, gross: npt.ArrayLike) -> FloatArray:
    """|net delta| / gross option size per account (0 where the account holds no options)."""
    d = np.abs(np.asarray(net_delta, dtype=np.float64))
    g = np.asarray(gross, dtype=np.float64)
    if np.any(g < 0):
        raise ValueError("gross sizes must be non-negative")
    return np.where(g > 0, d / np.where(g > 0, g, 1.0), 0.0)


def needs_hedge(net_delta: npt.ArrayLike, gross: npt.ArrayLike, band: float) -> BoolArray:
    """Accounts whose delta ratio exceeds `band` (a fraction in [0, 1))."""
    if not 0.0 <= band < 1.0:
        raise ValueError("band must be a fraction in [0, 1)")
    return np.asarray(delta_ratio(net_delta, gross) > band)


def cash_for_underlying(
    target_out: npt.ArrayLike,
    reserves_cash: npt.ArrayLike,
    reserves_underlying: npt.ArrayLike,
    fees: npt.ArrayLike,
    iterations: int = 200,
) -> FloatArray:
    """Least cash input whose optimal split returns at least `target_out` underlying.

    Vectorised bisection over a batch of orders (leading axes) on the unrounded split output,
    which is increasing in the input; relative precision ~1e-15. Raises ValueError when the
    pools cannot deliver the target (it must stay below the total underlying reserve).
    """
    target = np.asarray(target_out, dtype=np.float64)
    x = np.asarray(reserves_cash, dtype=np.float64)
    y = np.asarray(reserves_underlying, dtype=np.float64)
    f = np.asarray(fees, dtype=np.float64)
    if np.any(target < 0) or not np.all(np.isfinite(target)):
        raise ValueError("target_out must be finite and non-negative")
    if np.any(target >= np.sum(y, axis=-1)):
        raise ValueError("target_out exceeds what the pools hold")

    def out(a: FloatArray) -> FloatArray:
        legs = optimal_split(a, x, y, f)
        return amount_out(legs, x, y, f).sum(axis=-1)

    lo = np.zeros_like(target)
    hi = np.maximum(target, 1.0)
    # Grow the upper bound until it buys the target (geometric; a few steps).
    for _ in range(200):
        short = out(hi * _price_bound(x, y)) < target
        if not np.any(short):
            break
        hi = np.where(short, hi * 2.0, hi)
    hi = hi * _price_bound(x, y)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        enough = out(mid) >= target
        hi = np.where(enough, mid, hi)
        lo = np.where(enough, lo, mid)
        if np.all(hi - lo <= 1e-15 * hi):
            break
    return hi


def _price_bound(x: FloatArray, y: FloatArray) -> FloatArray:
    """A cash-per-underlying scale to start the bisection from (the best pool's price)."""
    live = (x > 0) & (y > 0)
    price = np.where(live, x / np.where(live, y, 1.0), 0.0)
    return np.asarray(np.max(price, axis=-1), dtype=np.float64)


class HedgeOrder(NamedTuple):
    """One hedge swap. Amounts are integer token units; legs follow the pools' order."""

    buy_underlying: bool  # True: cash in, underlying out
    legs: list[int]  # input per pool
    amount_in: int
    expected_out: int  # exact integer output of the pools (their rounding)
    min_out: int  # expected_out less the slippage tolerance
    delta_change: float  # change of the account's underlying, units (signed)
    clipped: bool  # the account held less underlying than the sale needed


def plan_hedge(
    net_delta: float,
    underlying_held: float,
    reserves_underlying: list[int],
    reserves_cash: list[int],
    fees_bps: list[int],
    underlying_decimals: int = 18,
    slippage: float = 0.005,
) -> HedgeOrder | None:
    """The swap that brings `net_delta` (units of underlying) to zero, or None if it is 0.

    `underlying_held` is the account's underlying in the engine (units); pool reserves are
    integer token units per pool, `fees_bps` each pool's fee. The input is split optimally
    across the pools (keeper.routing); `expected_out` is the pools' exact integer output.
    """
    if not 0.0 <= slippage < 1.0:
        raise ValueError("slippage must be a fraction in [0, 1)")
    if not (len(reserves_underlying) == len(reserves_cash) == len(fees_bps)):
        raise ValueError("reserves and fees need one entry per pool")
    if not np.isfinite(net_delta) or not np.isfinite(underlying_held) or underlying_held < 0:
        raise ValueError("net_delta and underlying_held must be finite (held >= 0)")
    u_scale = 10**underlying_decimals
    ru = np.array(reserves_underlying, dtype=np.float64)
    rc = np.array(reserves_cash, dtype=np.float64)
    fees = np.array(fees_bps, dtype=np.float64) / BPS
    clipped = False
    if net_delta < 0:
        want = round(-net_delta * u_scale)
        if want == 0:
            return None
        cash_in = float(cash_for_underlying(float(want), rc, ru, fees))
        amount_in = int(np.ceil(cash_in))
        legs = to_integer_amounts(optimal_split(float(amount_in), rc, ru, fees), amount_in)
        outs = [
            amount_out_exact(a, int(x), int(y), int(f))
            for a, x, y, f in zip(legs, reserves_cash, reserves_underlying, fees_bps, strict=True)
        ]
        # Integer rounding may leave the output a few units short: top up the biggest leg.
        biggest = int(np.argmax(legs))
        while sum(outs) < want:
            price = rc[biggest] / max(ru[biggest], 1.0)  # cash units per underlying unit
            legs[biggest] += int(np.ceil((want - sum(outs)) * price * 1.01)) + 1
            outs[biggest] = amount_out_exact(
                legs[biggest],
                reserves_cash[biggest],
                reserves_underlying[biggest],
                fees_bps[biggest],
            )
        amount_in = sum(legs)
        expected = sum(outs)
        change = expected / u_scale
        buy = True
    else:
        sell = min(net_delta, underlying_held)
        clipped = sell < net_delta
        amount_in = int(np.floor(sell * u_scale))
        if amount_in == 0:
            return None
        legs = to_integer_amounts(optimal_split(float(amount_in), ru, rc, fees), amount_in)
        expected = sum(
            amount_out_exact(a, int(x), int(y), int(f))
            for a, x, y, f in zip(legs, reserves_underlying, reserves_cash, fees_bps, strict=True)
        )
        change = -amount_in / u_scale
        buy = False
    min_out = int(np.floor(expected * (1.0 - slippage)))
    return HedgeOrder(buy, legs, amount_in, expected, min_out, change, clipped)
