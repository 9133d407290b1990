"""What the keeper does this block (pure: arrays in, actions out; no chain I/O).

Given the mirror's evaluation (MtM, H_IM, H_MM and the MM witness per account), the open
auctions, the Liquidator's terms and what is already in flight, `plan_block` returns the
actions in the order they should be sent:

- settler: `settle_expiry(e, hints)` for every listed expiry that has passed without a
  settlement price (the service adds each source's first round at or after the expiry as the
  hints and simulates first: it reverts until every source published such a round or the
  aggregator's settlement timeout passed), then
  `settle_positions(account)` for holders of settled expiries (bounded per block), and
  `settle_perp(account)` for the accounts whose unsettled perp funding is largest, at least
  `settlement.perp_funding_usd` either way (bounded per block);
- liquidator: `start_auction(account, witness)` for H_MM < -start_margin with no auction open
  (keeper.liquidation.plan_liquidations), `bid(account, 1e18, price_limit)` on open auctions still
  under water, best expected profit first, with price_limit from keeper.liquidation.price_limit at
  the auction's current discount; `end_auction(account)` once the account is healthy again.

Every vectorized step works on whole arrays; only the chosen actions (a handful per block) are
turned into Python objects. Expected profits use the Liquidator's formulas (contract notice of
Liquidator.vy): a solvent account's bid takes min(1, f*) with f* = (buffer - H) / (P - H),
P = MtM (1 - d), and gains f MtM d (1 - fund_share); an insolvent one (MtM <= 0) pays the bidder
-MtM + d (MtM - H) for a portfolio worth MtM, a gain of d (MtM - H). Gas is charged at the fee
cap (`gas_usd`). The bot replaces the estimate by the simulated outlay (`bid_profit`) before
sending.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from keeper.hedging import VENUE_PERP, delta_ratio, hedge_venue, needs_hedge, plan_hedge
from keeper.liquidation import plan_liquidations, price_limit
from keeper.orders import as_tuple
from keeper.routing import amount_out_exact
from keeper.runtime.perp_quotes import SignedQuote, quote_arrays
from keeper.runtime.settings import KeeperSettings

WAD = 10**18
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class LiquidatorTerms:
    """The Liquidator's parameters as floats (USD, fractions) and seconds."""

    d_start: float
    d_max: float
    duration: int
    fund_share: float
    buffer: float
    dust: float

    @classmethod
    def from_wads(
        cls, d_start: int, d_max: int, duration: int, fund_share: int, buffer: int, dust: int
    ) -> LiquidatorTerms:
        return cls(
            d_start / WAD, d_max / WAD, int(duration), fund_share / WAD, buffer / WAD, dust / WAD
        )


@dataclass(frozen=True)
class Action:
    """One transaction to send: `kind` names the contract function, `key` identifies it for
    in-flight tracking (one action per key at a time)."""

    kind: str  # start_auction | bid | end_auction | settle_expiry | settle_positions | settle_perp
    # | swap | fill (a perp hedge) | vol_update
    target: str  # "liquidator", "engine" or "vol_oracle"
    args: tuple[Any, ...]
    account: str | None = None
    expected_profit_usd: float = 0.0
    reason: str = ""
    method: str = ""  # the contract function when it is not `kind` (vol_update: update)

    @property
    def function(self) -> str:
        return self.method or self.kind

    @property
    def key(self) -> tuple[str, str]:
        subject = self.account if self.account is not None else str(self.args[0])
        return (self.kind, subject.lower())


def discount(start: ArrayLike, now: int, terms: LiquidatorTerms) -> FloatArray:
    """d(t) = d_start + (d_max - d_start) min(now - start, duration) / duration; 0 if no auction."""
    s = np.asarray(start, dtype=np.int64)
    elapsed = np.minimum(np.maximum(now - s, 0), terms.duration)
    d = terms.d_start + (terms.d_max - terms.d_start) * elapsed / terms.duration
    return np.where(s > 0, d, 0.0)


def taken_fraction(
    mtm: ArrayLike, health: ArrayLike, d: ArrayLike, terms: LiquidatorTerms
) -> FloatArray:
    """The fraction a whole-account bid takes (Liquidator._capped_fraction, in floats)."""
    m = np.asarray(mtm, dtype=np.float64)
    h = np.asarray(health, dtype=np.float64)
    dd = np.asarray(d, dtype=np.float64)
    p = m * (1.0 - dd)
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = np.where(p - h > 0, (terms.buffer - h) / (p - h), 1.0)
    cap = np.clip(cap, 0.0, 1.0)
    whole = (m <= terms.dust) | (m * (1.0 - cap) <= terms.dust) | (cap >= 1.0) | (m <= 0)
    return np.where(whole, 1.0, cap)


def expected_profit(
    mtm: ArrayLike, health: ArrayLike, d: ArrayLike, terms: LiquidatorTerms, gas_usd: float
) -> FloatArray:
    """USD a bidder gains from a whole-account bid, less gas (see the module)."""
    m = np.asarray(mtm, dtype=np.float64)
    h = np.asarray(health, dtype=np.float64)
    dd = np.asarray(d, dtype=np.float64)
    f = taken_fraction(m, h, dd, terms)
    solvent = f * m * dd * (1.0 - terms.fund_share)
    insolvent = dd * (m - h)
    return np.where(m > 0, solvent, insolvent) - gas_usd


def bid_profit(mtm_usd: float, taken_wad: int, outlay_wad: int, gas_usd: float) -> float:
    """Profit of a simulated bid: the share of the portfolio taken (at MtM) less the cash paid
    (the simulated outlay, negative when the bidder is paid) and gas. An insolvent account's
    loss is realized before its portfolio moves (the fund, then the cash pool, make its cash
    cover it: Liquidator.bid), so the share the bidder takes is worth nothing net and the gain
    is the reward it is paid, f d (MtM - H)."""
    return taken_wad / WAD * max(mtm_usd, 0.0) - outlay_wad / WAD - gas_usd


@dataclass(frozen=True)
class BlockInputs:
    """Everything `plan_block` reads, aligned by mirror row."""

    addresses: Sequence[str]
    mtm: FloatArray
    health_im: FloatArray
    health_mm: FloatArray
    witness_mm: NDArray[np.int64]
    auction_start: NDArray[np.int64]
    now: int
    terms: LiquidatorTerms | None
    protected: Collection[int] = ()  # rows never acted on (the bidder, the insurance fund)
    in_flight: Collection[tuple[str, str]] = ()
    listed_expiries: Sequence[int] = ()
    settlement: Mapping[int, int] | None = None
    holders_of_settled: NDArray[np.int64] | None = None
    gas_usd: float = 0.0
    # Funding each account's perp owes since its last settlement (USD, < 0: it receives).
    perp_owed: FloatArray | None = None


def plan_block(x: BlockInputs, settings: KeeperSettings) -> list[Action]:
    """The actions for one block, in sending order (see the module)."""
    actions: list[Action] = []
    busy = {(k, s.lower()) for k, s in x.in_flight}
    if settings.roles.settler:
        actions += _settlement(x, settings, busy)
    if settings.roles.liquidator and x.terms is not None:
        actions += _liquidation(x, settings, busy)
    return actions


def _settlement(x: BlockInputs, s: KeeperSettings, busy: set[tuple[str, str]]) -> list[Action]:
    out: list[Action] = []
    settled = x.settlement or {}
    for e in x.listed_expiries:
        if e <= x.now and e not in settled and ("settle_expiry", str(e)) not in busy:
            out.append(Action("settle_expiry", "engine", (int(e),), reason=f"expiry {e} passed"))
    rows = x.holders_of_settled if x.holders_of_settled is not None else np.zeros(0, np.int64)
    for i in rows[: s.settlement.max_accounts_per_block]:
        addr = x.addresses[int(i)]
        if ("settle_positions", addr.lower()) in busy:
            continue
        out.append(
            Action(
                "settle_positions", "engine", (addr,), account=addr, reason="holds settled expiries"
            )
        )
    out += _perp_settlements(x, s, busy)
    return out


def _perp_settlements(
    x: BlockInputs, s: KeeperSettings, busy: set[tuple[str, str]]
) -> list[Action]:
    """settle_perp for the largest unsettled funding at or above the threshold, largest first."""
    if x.perp_owed is None or not len(x.perp_owed):
        return []
    owed = np.abs(np.nan_to_num(np.asarray(x.perp_owed, dtype=np.float64)))
    rows = np.flatnonzero(owed >= max(s.settlement.perp_funding_usd, 1e-12))
    rows = rows[np.argsort(-owed[rows], kind="stable")]
    out: list[Action] = []
    for i in rows[: s.settlement.max_accounts_per_block]:
        addr = x.addresses[int(i)]
        if ("settle_perp", addr.lower()) in busy:
            continue
        reason = f"perp funding owed {float(x.perp_owed[int(i)]):.2f} USD"
        out.append(Action("settle_perp", "engine", (addr,), account=addr, reason=reason))
    return out


def _liquidation(x: BlockInputs, s: KeeperSettings, busy: set[tuple[str, str]]) -> list[Action]:
    assert x.terms is not None
    n = len(x.addresses)
    if n == 0:
        return []
    h_mm, h_im, mtm = x.health_mm[:n], x.health_im[:n], x.mtm[:n]
    evaluated = np.isfinite(h_mm) & np.isfinite(h_im) & np.isfinite(mtm)
    protected = np.zeros(n, dtype=bool)
    protected[[int(i) for i in x.protected if 0 <= int(i) < n]] = True
    protected |= ~evaluated
    is_open = x.auction_start[:n] > 0
    plan = plan_liquidations(
        np.where(evaluated, h_mm, 0.0),
        x.witness_mm[:n],
        is_open,
        protected,
        margin=s.liquidation.start_margin_usd,
        health_im=np.where(evaluated, h_im, 0.0) if s.liquidation.end_at == "im" else None,
    )
    out: list[Action] = []
    for i, w in zip(plan.start, plan.witnesses, strict=True):
        addr = x.addresses[int(i)]
        if ("start_auction", addr.lower()) not in busy:
            out.append(
                Action(
                    "start_auction",
                    "liquidator",
                    (addr, int(w)),
                    account=addr,
                    reason=f"H_MM {h_mm[i]:.6g} < 0, witness {int(w)}",
                )
            )
    bids = plan.bid[is_open[plan.bid]]  # only auctions already open on chain
    if bids.size and s.liquidation.max_bids_per_block > 0:
        d = discount(x.auction_start[bids], x.now, x.terms)
        profit = expected_profit(mtm[bids], h_mm[bids], d, x.terms, x.gas_usd)
        limit = price_limit(mtm[bids], 1.0, d, x.terms.fund_share, s.liquidation.price_tolerance)
        order = np.argsort(-profit, kind="stable")
        count = 0
        for k in order:
            if count >= s.liquidation.max_bids_per_block:
                break
            if not profit[k] >= s.liquidation.min_profit_usd:
                continue
            addr = x.addresses[int(bids[k])]
            if ("bid", addr.lower()) in busy:
                continue
            out.append(
                Action(
                    "bid",
                    "liquidator",
                    (addr, WAD, _limit_wad(float(limit[k]))),
                    account=addr,
                    expected_profit_usd=float(profit[k]),
                    reason=f"MtM {mtm[bids[k]]:.6g} discount {d[k]:.4f}",
                )
            )
            count += 1
    for i in plan.end:
        addr = x.addresses[int(i)]
        if ("end_auction", addr.lower()) not in busy:
            out.append(
                Action(
                    "end_auction",
                    "liquidator",
                    (addr,),
                    account=addr,
                    reason=f"H_MM {h_mm[i]:.6g} >= 0",
                )
            )
    return out


def _limit_wad(limit_usd: float) -> int:
    """The price limit in wad, rounded up to the next micro-USD (a limit is a ceiling)."""
    return int(np.ceil(limit_usd * 1e6)) * 10**12


@dataclass(frozen=True)
class Pools:
    """The venues a hedge is split across: addresses, fees and reserves in token units, with
    the underlying's reserve first (whatever the pool's token0 is)."""

    addresses: Sequence[str]
    fees_bps: Sequence[int]
    reserves_underlying: Sequence[int]
    reserves_cash: Sequence[int]


@dataclass(frozen=True)
class PerpVenue:
    """The perp as a hedge venue this block: the live signed quotes, the index price and the
    funding rate per hour (PerpBook.funding_rate) as floats, and the band (a fraction)."""

    quotes: Sequence[SignedQuote]
    spot: float
    funding_rate: float
    band: float


def plan_hedges(
    addresses: Sequence[str],
    rows: Sequence[int],
    net_delta: FloatArray,
    gross: FloatArray,
    underlying: FloatArray,
    pools: Pools,
    cash_token: str,
    underlying_token: str,
    now: int,
    settings: KeeperSettings,
    in_flight: Collection[tuple[str, str]] = (),
    underlying_decimals: int = 18,
    perp: PerpVenue | None = None,
) -> list[Action]:
    """`MarginEngine.swap` for every operated account whose |net delta| / gross left the band:
    back to zero delta, split across the pools (keeper.hedging.plan_hedge), or, with `perp`,
    a fill of the perp quote that costs less (keeper.hedging.hedge_venue: the pools' impact
    and fees against the quote's premium plus the funding expected over
    `hedge.perp_holding_hours`). The delta test is vectorized; only the accounts due get an
    order. The hedges are mined in sending order in the same block, so each is planned on the
    reserves and quote sizes the earlier ones leave (their exact integer outputs): a second
    hedge quoted on the block's reserves would miss its `min_out` after the first moved the
    pools."""
    h = settings.hedge
    idx = np.asarray(rows, dtype=np.int64)
    if idx.size == 0:
        return []
    d, g = net_delta[idx], gross[idx]
    due = needs_hedge(np.nan_to_num(d), g, h.band) & (g > h.min_gross) & np.isfinite(d)
    busy = {(k, s.lower()) for k, s in in_flight}
    out: list[Action] = []
    ratios = delta_ratio(np.nan_to_num(d), g)
    ru, rc = list(pools.reserves_underlying), list(pools.reserves_cash)
    remaining = [int(q.order["size"]) for q in perp.quotes] if perp is not None else []
    for k in np.flatnonzero(due):
        i = int(idx[k])
        addr = addresses[i]
        if ("swap", addr.lower()) in busy or ("fill", addr.lower()) in busy:
            continue
        if perp is not None and perp.quotes:
            taken = _perp_hedge(
                addr, float(d[k]), float(underlying[i]), ru, rc, pools, perp, remaining,
                underlying_decimals, settings,
            )  # fmt: skip
            if taken is not None:
                out.append(taken)
                continue
        order = plan_hedge(
            float(d[k]),
            float(underlying[i]),
            list(ru),
            list(rc),
            list(pools.fees_bps),
            underlying_decimals,
            h.slippage,
        )
        if order is None:
            continue
        for j, (leg, fee) in enumerate(zip(order.legs, pools.fees_bps, strict=True)):
            if leg <= 0:
                continue
            if order.buy_underlying:  # cash in, underlying out
                got = amount_out_exact(int(leg), rc[j], ru[j], int(fee))
                rc[j], ru[j] = rc[j] + int(leg), ru[j] - got
            else:
                got = amount_out_exact(int(leg), ru[j], rc[j], int(fee))
                ru[j], rc[j] = ru[j] + int(leg), rc[j] - got
        legs = [(a, int(x)) for a, x in zip(pools.addresses, order.legs, strict=True) if x > 0]
        token_in = cash_token if order.buy_underlying else underlying_token
        args = (
            addr,
            token_in,
            [a for a, _ in legs],
            [x for _, x in legs],
            int(order.min_out),
            int(now) + h.deadline_seconds,
        )
        side = "buy" if order.buy_underlying else "sell"
        out.append(
            Action(
                "swap",
                "engine",
                args,
                account=addr,
                reason=f"delta {d[k]:+.4f} ratio {ratios[k]:.4f} > {h.band}: {side} "
                f"{abs(order.delta_change):.6g} over {len(legs)} pools"
                + (" (clipped)" if order.clipped else ""),
            )
        )
    return out


def _perp_hedge(
    addr: str,
    delta: float,
    held: float,
    ru: list[int],
    rc: list[int],
    pools: Pools,
    perp: PerpVenue,
    remaining: list[int],
    underlying_decimals: int,
    settings: KeeperSettings,
) -> Action | None:
    """The fill of a perp quote for one account's hedge, if the perp is the cheaper venue
    (`remaining` loses the size taken); None to hedge through the pools."""
    choice = hedge_venue(
        delta,
        perp.spot,
        ru,
        rc,
        list(pools.fees_bps),
        quote_arrays(perp.quotes, remaining),
        perp.funding_rate,
        settings.hedge.perp_holding_hours,
        perp.band,
        underlying_held=held,
        underlying_decimals=underlying_decimals,
    )
    if int(choice.venue) != VENUE_PERP:
        return None
    j = int(choice.perp_quote)
    quote = perp.quotes[j]
    amount = min(round(abs(delta) * WAD), remaining[j])
    if amount <= 0:
        return None
    remaining[j] -= amount
    side = "sell" if delta > 0 else "buy"
    reason = (
        f"delta {delta:+.4f}: {side} {amount / WAD:.6g} perp at "
        f"{quote.order['price'] / WAD:.2f} (cost {float(choice.perp_cost):.2f} USD "
        f"vs pools {float(choice.pool_cost):.2f})"
    )
    args = (as_tuple(quote.order), quote.signature, amount, addr)
    return Action("fill", "engine", args, account=addr, reason=reason)
