"""The crash scenario's pure pieces: price and vol paths, trader books, arbitrage trades.

No chain I/O: `kappa_ops.demo` plays these on a node. Deterministic for a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from keeper.routing import amount_out_exact

DAY = 86_400
EXPIRY_HOUR = 8 * 3600  # expiries at 08:00 UTC


@dataclass(frozen=True)
class ScenarioSettings:
    """Shape of the demo. The defaults are `make demo`; `short()` is the integration test's."""

    traders: int = 56  # directional accounts: half buy calls, half sell puts
    near_limit: int = 10  # put sellers funded within a few % of initial margin
    crash_steps: int = 60  # blocks of falling prices
    recovery_steps: int = 20  # blocks of partial recovery
    crash: float = 0.35  # total fall of the oracle price
    recovery: float = 0.4  # share of the fall recovered
    spot: float = 3000.0
    tenors_days: tuple[int, ...] = (3, 10, 31)
    call_strikes: tuple[float, ...] = (1.0, 1.1, 1.2)  # times spot
    put_strikes: tuple[float, ...] = (0.9, 0.8)
    atm_vol: tuple[float, ...] = (0.65, 0.6, 0.58)  # per tenor, before the crash
    skew: float = -0.15
    vol_peak_add: float = 0.6  # ATM vol added at the bottom of the crash
    skew_peak: float = -0.35
    band: float = 0.02  # hedge when |net delta| / gross > band
    noise: float = 0.002  # relative noise of the price path per block
    feed_spread: float = 0.001  # the three feeds answer spot * (1 - s, 1, 1 + s)
    seed: int = 9
    # Chain time between two crash blocks (anvil's clock is moved on): the crash spans hours,
    # as a real one does, and the cash pool's interest over it is material.
    block_seconds: int = 300
    borrow_utilization: float = 0.6  # the borrower takes the cash pool to this utilization
    # The perp (docs/demo.md "The perp"): directional perp traders, half long, half short, of
    # `perp_size` ETH; the first `perp_near_limit` longs funded 2-10% above initial margin (the
    # crash liquidates them), the others 50-300% above.
    perp_traders: int = 16
    perp_near_limit: int = 4
    perp_size: tuple[float, float] = (2.0, 10.0)
    # The perp liquidity account's quotes: half-spread around the index of `perp_spread`, plus
    # `perp_spread_slope` per ETH of its inventory on the side that grows it, at most
    # `perp_max_quote` of the band.
    perp_spread: float = 0.0008
    perp_spread_slope: float = 0.00002
    perp_max_quote: float = 0.75
    perp_lp_deposit: float = 5_000_000.0  # USD
    # The market makers hold `perp_hedge_share` of their options delta (opposite) in perps,
    # rebalanced when the perp leg is off by more than `perp_rebalance` of their gross option
    # size, through the perp only where keeper.hedging.hedge_venue prices it cheaper than the
    # pools for a `perp_holding_hours` hold.
    perp_hedge_share: float = 0.5
    perp_rebalance: float = 0.02
    perp_holding_hours: float = 2.0
    # The keeper's settler pokes settle_perp at this much unsettled funding (USD), lower than
    # its default so that the demo's hours of funding reach it.
    settle_perp_usd: float = 5.0

    @classmethod
    def short(cls) -> ScenarioSettings:
        """A small version: a dozen accounts, 16 blocks (the integration test). Its market
        makers keep a smaller perp share, so that a pool hedge is still large enough to split
        across the pools."""
        return cls(
            traders=8,
            near_limit=3,
            crash_steps=12,
            recovery_steps=4,
            perp_traders=4,
            perp_near_limit=2,
            settle_perp_usd=0.2,
            perp_hedge_share=0.2,
        )

    @property
    def steps(self) -> int:
        return self.crash_steps + self.recovery_steps


def expiries(now: int, tenors_days: tuple[int, ...]) -> list[int]:
    """Expiries at 08:00 UTC, `tenors_days` days after the first 08:00 at least a day ahead."""
    first = (now + DAY) - (now + DAY) % DAY + EXPIRY_HOUR
    if first < now + DAY:
        first += DAY
    return [first + (d - 1) * DAY for d in tenors_days]


def price_path(s: ScenarioSettings) -> np.ndarray:
    """Oracle price per step 1..steps: a geometric fall of `crash` over `crash_steps`, then a
    geometric recovery of `recovery` of the fall, with small deterministic noise."""
    rng = np.random.default_rng(s.seed)
    bottom = s.spot * (1.0 - s.crash)
    end = bottom + s.recovery * (s.spot - bottom)
    t1 = np.arange(1, s.crash_steps + 1) / s.crash_steps
    fall = s.spot * np.exp(np.log(bottom / s.spot) * t1)
    t2 = np.arange(1, s.recovery_steps + 1) / max(s.recovery_steps, 1)
    rise = bottom * np.exp(np.log(end / bottom) * t2)
    path = np.concatenate([fall, rise])
    noise = 1.0 + s.noise * rng.standard_normal(path.size)
    noise[s.crash_steps - 1] = 1.0  # the bottom is exact
    noise[-1] = 1.0
    return path * noise


def vol_path(s: ScenarioSettings) -> tuple[np.ndarray, np.ndarray]:
    """(ATM vol [steps, tenors], skew [steps]): up by `vol_peak_add` at the bottom, then half
    of the spike fades during the recovery."""
    base = np.array(s.atm_vol)
    t1 = np.arange(1, s.crash_steps + 1) / s.crash_steps
    t2 = np.arange(1, s.recovery_steps + 1) / max(s.recovery_steps, 1)
    bump = np.concatenate([t1, 1.0 - 0.5 * t2])
    atm = base[None, :] + s.vol_peak_add * bump[:, None]
    skew = s.skew + (s.skew_peak - s.skew) * bump
    return atm, skew


@dataclass(frozen=True)
class TraderOrder:
    """A directional trader's order: the trader signs, a market maker fills."""

    trader: int
    series: int  # index into the listed series
    is_buy: bool  # the trader buys (calls) or sells (puts)
    size: float  # units of the underlying
    cushion: float  # deposit above the margin need, as a fraction of it


def trader_orders(s: ScenarioSettings, n_call_series: int, n_put_series: int) -> list[TraderOrder]:
    """Half the traders buy calls, half sell puts; the first `near_limit` put sellers are
    funded 1-5% above their initial margin, the others 30-200% above."""
    rng = np.random.default_rng(s.seed + 1)
    buyers = s.traders // 2
    orders = []
    for i in range(s.traders):
        if i < buyers:
            series = int(rng.integers(n_call_series))
            size = float(np.round(rng.uniform(0.5, 3.0), 1))
            orders.append(TraderOrder(i, series, True, size, float(rng.uniform(0.2, 1.0))))
        else:
            j = i - buyers
            series = n_call_series + int(rng.integers(n_put_series))
            size = float(np.round(rng.uniform(2.0, 8.0), 1))
            near = j < s.near_limit
            cushion = rng.uniform(0.01, 0.05) if near else rng.uniform(0.3, 2.0)
            orders.append(TraderOrder(i, series, False, size, float(cushion)))
    return orders


@dataclass(frozen=True)
class PerpTraderOrder:
    """A directional perp trader's order: the trader signs, the perp liquidity account takes."""

    trader: int  # index among the perp traders
    is_buy: bool  # long (True) or short
    size: float  # units of the underlying
    cushion: float  # deposit above the initial margin need, as a fraction of it


def perp_trader_orders(s: ScenarioSettings) -> list[PerpTraderOrder]:
    """Alternately long and short; the first `perp_near_limit` longs are funded 2-10% above
    their initial margin, every other trader 50-300% above."""
    rng = np.random.default_rng(s.seed + 2)
    lo, hi = s.perp_size
    orders = []
    for i in range(s.perp_traders):
        is_buy = i % 2 == 0
        size = float(np.round(rng.uniform(lo, hi), 1))
        near = is_buy and i // 2 < s.perp_near_limit
        cushion = rng.uniform(0.02, 0.1) if near else rng.uniform(0.5, 3.0)
        orders.append(PerpTraderOrder(i, is_buy, size, float(cushion)))
    return orders


def perp_quote(
    spot: npt.ArrayLike,
    inventory: npt.ArrayLike,
    lp_buys: npt.ArrayLike,
    s: ScenarioSettings,
    band: float,
) -> npt.NDArray[np.float64]:
    """The perp liquidity account's price (USD) for a trade in which it buys (`lp_buys`) or
    sells, at its signed `inventory` (units, long > 0): the index times 1 -/+ the half-spread
    `perp_spread`, widened by `perp_spread_slope` per unit of inventory on the side that grows
    |inventory| (both sides when flat), capped at `perp_max_quote` of the band."""
    x = np.asarray(spot, dtype=np.float64)
    q = np.asarray(inventory, dtype=np.float64)
    buys = np.asarray(lp_buys, dtype=np.bool_)
    grows = (q == 0) | ((q > 0) == buys)
    half = s.perp_spread + np.where(grows, s.perp_spread_slope * np.abs(q), 0.0)
    half = np.minimum(half, s.perp_max_quote * band)
    return np.asarray(x * np.where(buys, 1.0 - half, 1.0 + half), dtype=np.float64)


def perp_hedge_trades(
    option_delta: npt.ArrayLike,
    perp_size: npt.ArrayLike,
    gross: npt.ArrayLike,
    s: ScenarioSettings,
) -> npt.NDArray[np.float64]:
    """Each market maker's perp trade (units, > 0 buys): to `-perp_hedge_share` of its options
    delta, 0 where its perp leg is within `perp_rebalance` of its gross option size."""
    target = -s.perp_hedge_share * np.asarray(option_delta, dtype=np.float64)
    trade = np.round(target - np.asarray(perp_size, dtype=np.float64), 2)
    small = np.abs(trade) < s.perp_rebalance * np.asarray(gross, dtype=np.float64)
    return np.asarray(np.where(small | (np.abs(trade) < 0.01), 0.0, trade), dtype=np.float64)


def reserves_after(
    reserve_underlying: int, reserve_cash: int, fee_bps: int, trade: tuple[bool, int] | None
) -> tuple[int, int]:
    """A constant-product pool's reserves after `arbitrage_trade`'s trade (None: unchanged),
    at the pool's exact integer output (keeper.routing.amount_out_exact)."""
    x, y = reserve_underlying, reserve_cash
    if trade is None:
        return x, y
    sell_underlying, amount = trade
    if sell_underlying:
        return x + amount, y - amount_out_exact(amount, x, y, fee_bps)
    return x - amount_out_exact(amount, y, x, fee_bps), y + amount


def arbitrage_trade(
    reserve_underlying: int, reserve_cash: int, fee_bps: int, target_price: float
) -> tuple[bool, int] | None:
    """The trade that moves a constant-product pool's price (cash units per underlying unit)
    to `target_price`: (sell_underlying, amount_in in token units), or None within the fee.

    x y = k: selling underlying until y/x = p needs x' = sqrt(k / p); buying it needs
    y' = sqrt(k p); the input is grossed up by the fee.
    """
    x, y = float(reserve_underlying), float(reserve_cash)
    if x <= 0 or y <= 0 or not target_price > 0:
        return None
    price = y / x
    g = 1.0 - fee_bps / 10_000
    if abs(price / target_price - 1.0) <= max(fee_bps / 10_000, 1e-5):
        return None
    k = x * y
    if price > target_price:
        amount = (math.sqrt(k / target_price) - x) / g
        return (True, int(amount)) if amount >= 1 else None
    amount = (math.sqrt(k * target_price) - y) / g
    return (False, int(amount)) if amount >= 1 else None
