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

Venue. The same delta can instead be hedged with the perpetual future (keeper.perp; traded
through the engine's signed orders under keeper.series.PERP_ID). `hedge_venue` prices the
hedge on both venues in USD against the index S and picks the cheaper (`pool_hedge_cost`,
`perp_hedge_cost`; the cost model is stated in `hedge_venue`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from keeper.routing import BPS, amount_out, amount_out_exact, optimal_split, to_integer_amounts

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

IntArray = npt.NDArray[np.int64]

__all__ = [
    "VENUE_NONE",
    "VENUE_PERP",
    "VENUE_POOLS",
    "HedgeOrder",
    "PerpCost",
    "PerpQuotes",
    "VenueChoice",
    "cash_for_underlying",
    "delta_ratio",
    "hedge_venue",
    "needs_hedge",
    "perp_hedge_cost",
    "plan_hedge",
    "pool_hedge_cost",
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


# ---------------------------------------------------------------------------------------------
# Venue choice: the pools or the perp

VENUE_NONE = -1  # neither venue can carry the whole hedge
VENUE_POOLS = 0
VENUE_PERP = 1


def pool_hedge_cost(
    net_delta: npt.ArrayLike,
    spot: npt.ArrayLike,
    reserves_underlying: npt.ArrayLike,
    reserves_cash: npt.ArrayLike,
    fees_bps: npt.ArrayLike,
    underlying_held: npt.ArrayLike | None = None,
    underlying_decimals: int = 18,
    cash_decimals: int = 6,
) -> FloatArray:
    """USD cost of bringing `net_delta` to zero through the pools, against the index `spot`.

    The split is `plan_hedge`'s: a short delta buys `-net_delta` underlying with the least
    cash whose optimal split delivers it (`cash_for_underlying`), a long delta sells
    `net_delta` split with `optimal_split`. The cost is the execution's shortfall against S:

        buy  |d|:  cash paid - |d| * S          sell d:  d * S - cash received

    i.e. price impact plus fees (plus any gap between the pools' price and the index, so a
    pool priced in the hedge's favour gives a negative cost). Unrounded: the split is
    homogeneous in the amounts, so computing it in whole tokens gives the legs `plan_hedge`
    sends, which differ only by its integer rounding (a few token units).

    Args:
        net_delta: signed net delta per account (units of the underlying), any batch shape.
        spot: the index S (USD per unit), broadcast over the batch.
        reserves_underlying, reserves_cash: token units per pool (pool axis last, as
            `plan_hedge` takes them), shared by the batch or one row per account.
        fees_bps: each pool's fee in basis points.
        underlying_held: the underlying each account holds in the engine (units); a sale of
            more than this cannot be done (the engine has no short underlying). None: no limit.
        underlying_decimals, cash_decimals: the tokens' decimals (the cash token is USD).

    Returns:
        The cost per account (USD, batch shape): 0 where the delta is 0, +inf where the pools
        cannot carry the whole hedge (a purchase of at least what the live pools hold, a sale
        of more than `underlying_held`, no live pool).
    """
    d = np.asarray(net_delta, dtype=np.float64)
    s = np.asarray(spot, dtype=np.float64)
    _check_delta_spot(d, s)
    ru, rc, fb = np.broadcast_arrays(
        np.asarray(reserves_underlying, dtype=np.float64) / 10.0**underlying_decimals,
        np.asarray(reserves_cash, dtype=np.float64) / 10.0**cash_decimals,
        np.asarray(fees_bps, dtype=np.float64) / BPS,
    )
    if ru.ndim == 0:
        raise ValueError("reserves need a pool axis (the last axis)")
    shape = np.broadcast_shapes(d.shape, s.shape, ru.shape[:-1])
    n = ru.shape[-1]
    y, x, f = (np.broadcast_to(v, (*shape, n)) for v in (ru, rc, fb))
    d, s = np.broadcast_to(d, shape), np.broadcast_to(s, shape)
    live = (x > 0) & (y > 0)
    depth = np.sum(np.where(live, y, 0.0), axis=-1)
    can_sell = (d > 0) & np.any(live, axis=-1)
    if underlying_held is not None:
        held = np.broadcast_to(np.asarray(underlying_held, dtype=np.float64), shape)
        if np.any(held < 0) or not np.all(np.isfinite(held)):
            raise ValueError("underlying_held must be finite and non-negative")
        can_sell &= d <= held
    can_buy = (d < 0) & (-d < depth)
    cost = np.where(d == 0, 0.0, np.inf)
    if np.any(can_buy):
        want = -d[can_buy]
        cash = cash_for_underlying(want, x[can_buy], y[can_buy], f[can_buy])
        cost[can_buy] = cash - want * s[can_buy]
    if np.any(can_sell):
        sell = d[can_sell]
        xs, ys, fs = y[can_sell], x[can_sell], f[can_sell]  # underlying in, cash out
        got = amount_out(optimal_split(sell, xs, ys, fs), xs, ys, fs).sum(axis=-1)
        cost[can_sell] = sell * s[can_sell] - got
    return cost


class PerpQuotes(NamedTuple):
    """Resting perp quotes the hedge can take, quote axis last (shared by every account, or
    one row per account): price (USD per unit), size available (units), and side: `is_bid`
    True for a quote that buys the perp (a short hedge sells into it), False for one that
    sells (a long hedge buys from it)."""

    price: npt.ArrayLike
    size: npt.ArrayLike
    is_bid: npt.ArrayLike


class PerpCost(NamedTuple):
    """The cheapest perp quote that can carry each account's whole hedge."""

    cost: FloatArray  # USD, +inf where no quote can
    quote: IntArray  # its index on the quote axis, -1 for none (or a zero delta)


def perp_hedge_cost(
    net_delta: npt.ArrayLike,
    spot: npt.ArrayLike,
    quotes: PerpQuotes,
    funding_rate: npt.ArrayLike,
    holding_hours: npt.ArrayLike,
    band: float,
) -> PerpCost:
    """USD cost of bringing `net_delta` to zero with the perp: taking one quote for the
    whole hedge of t = -net_delta units (t > 0 buys), then holding it `holding_hours`.

        cost = t * (X - S) + t * S * r * H = -d * ((X - S) + S * r * H)

    The first term is the fill payment (keeper.perp.fill_payment: the buyer pays the seller
    n * (X - S)), negative for a quote in the hedge's favour (a bid above the index, an ask
    below it). The second is the funding at the current hourly rate r (keeper.perp
    `funding_rate_float`; positive: longs pay shorts), so a short hedge receives it when
    r > 0. A quote can carry the hedge if it is on the other side of it (a bid for a short
    hedge, an ask for a long one), its size is at least |d|, and its price is inside the band
    |X - S| <= band * S (the float form of keeper.perp.premium_of's check; a fill outside it
    reverts). Each quote is taken whole or not at all (no walk down the book); the cheapest
    quote that can carry the hedge is chosen.

    Args:
        net_delta: signed net delta per account (units), any batch shape.
        spot: the index S (USD per unit), broadcast over the batch.
        quotes: `PerpQuotes`, quote axis last, broadcast against the batch.
        funding_rate: the perp's funding rate per hour (a fraction), broadcast.
        holding_hours: the hedge's expected holding time (hours, >= 0), broadcast.
        band: the perp's band as a fraction (PerpParams.band / 1e18).

    Returns:
        PerpCost(cost, quote): cost 0 and quote -1 where the delta is 0.
    """
    d = np.asarray(net_delta, dtype=np.float64)
    s = np.asarray(spot, dtype=np.float64)
    _check_delta_spot(d, s)
    r = np.asarray(funding_rate, dtype=np.float64)
    h = np.asarray(holding_hours, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise ValueError("funding_rate must be finite")
    if np.any(h < 0) or not np.all(np.isfinite(h)):
        raise ValueError("holding_hours must be finite and non-negative")
    if not 0.0 <= band < 1.0:
        raise ValueError("band must be a fraction in [0, 1)")
    price, size, bid = np.broadcast_arrays(
        np.asarray(quotes.price, dtype=np.float64),
        np.asarray(quotes.size, dtype=np.float64),
        np.asarray(quotes.is_bid, dtype=np.bool_),
    )
    if price.ndim == 0:
        raise ValueError("quotes need a quote axis (the last axis)")
    shape = np.broadcast_shapes(d.shape, s.shape, r.shape, h.shape, price.shape[:-1])
    d, s, r, h = (np.broadcast_to(v, shape)[..., None] for v in (d, s, r, h))
    serves = (
        np.isfinite(price)
        & (price > 0)
        & (np.abs(price - s) <= band * s)
        & (size >= np.abs(d))
        & (bid == (d > 0))
    )
    per_quote = np.where(serves, -d * ((price - s) + s * r * h), np.inf)
    best = np.argmin(per_quote, axis=-1)
    cost = np.take_along_axis(per_quote, best[..., None], axis=-1)[..., 0]
    zero = d[..., 0] == 0
    quote = np.where(np.isfinite(cost) & ~zero, best, -1).astype(np.int64)
    return PerpCost(np.where(zero, 0.0, cost), quote)


class VenueChoice(NamedTuple):
    """Per account: the venue (VENUE_POOLS, VENUE_PERP or VENUE_NONE), its cost (the smaller
    of the two, +inf for none), both venues' costs (USD) and the perp quote to take (-1 when
    the perp is not chosen)."""

    venue: npt.NDArray[np.int8]
    cost: FloatArray
    pool_cost: FloatArray
    perp_cost: FloatArray
    perp_quote: IntArray


def hedge_venue(
    net_delta: npt.ArrayLike,
    spot: npt.ArrayLike,
    reserves_underlying: npt.ArrayLike,
    reserves_cash: npt.ArrayLike,
    fees_bps: npt.ArrayLike,
    quotes: PerpQuotes,
    funding_rate: npt.ArrayLike,
    holding_hours: npt.ArrayLike,
    band: float,
    underlying_held: npt.ArrayLike | None = None,
    underlying_decimals: int = 18,
    cash_decimals: int = 6,
) -> VenueChoice:
    """The cheaper venue for each account's hedge of `net_delta` back to zero, in USD.

    Cost model (both legs priced against the oracle index S, positive = the hedge costs):
    - pools (`pool_hedge_cost`): the shortfall of the routed execution against S, i.e. the
      split's price impact plus the pools' fees: cash paid - |d| S for a purchase,
      d S - cash received for a sale, on the split `plan_hedge` sends;
    - perp (`perp_hedge_cost`): the best quote's fill premium t (X - S) plus the expected
      funding t S r H over the holding time H, for the trade t = -d (a short hedge receives
      funding when r > 0); +inf where no quote is on the right side, large enough, and
      inside the band.

    Assumptions: the funding rate r and the index S stay constant over the holding time (the
    hedge's own fill moving the mark EMA, and so the rate, is ignored); the pool cost is the
    exact quote on the reserves now (nothing else trades in the block, no refill); each
    venue's cost is that of opening the hedge only (closing it later, gas, and the margin the
    perp position ties up are not priced); a venue that cannot carry the whole hedge costs
    +inf. Ties go to the pools, which carry no funding exposure; VENUE_NONE where both are
    +inf.

    Args: as `pool_hedge_cost` and `perp_hedge_cost`.

    Returns:
        VenueChoice, arrays of the batch shape.
    """
    pools = pool_hedge_cost(
        net_delta,
        spot,
        reserves_underlying,
        reserves_cash,
        fees_bps,
        underlying_held,
        underlying_decimals,
        cash_decimals,
    )
    perp = perp_hedge_cost(net_delta, spot, quotes, funding_rate, holding_hours, band)
    pools, perp_cost, quote = np.broadcast_arrays(pools, perp.cost, perp.quote)
    use_perp = perp_cost < pools
    venue = np.where(use_perp, VENUE_PERP, VENUE_POOLS).astype(np.int8)
    venue[np.isinf(pools) & np.isinf(perp_cost)] = VENUE_NONE
    return VenueChoice(
        venue,
        np.minimum(pools, perp_cost),
        np.array(pools),
        np.array(perp_cost),
        np.where(use_perp, quote, -1).astype(np.int64),
    )


def _check_delta_spot(d: FloatArray, s: FloatArray) -> None:
    if not np.all(np.isfinite(d)):
        raise ValueError("net_delta must be finite")
    if np.any(s <= 0) or not np.all(np.isfinite(s)):
        raise ValueError("spot must be finite and positive")
