"""The crash demo on a local node (ape I/O): deploy, seed a market, crash it; the keeper bot
keeps it safe.

Actors (ape test accounts): the market (0: deployer, the mock feeds' publisher, risk admin),
two market makers (1, 2), the keeper bot's signer (3: liquidation bidder, hedging operator of
the market makers, VolOracle feeder) and an arbitrageur (4) who keeps the pools at the oracle
price. Directional traders are key pairs that only sign orders (EIP-712); their collateral is
deposited for them with `deposit_for`, and the market makers fill their orders as takers.

The demo only plays the market. The keeper is the Silverback bot (keeper/runtime/), started as
its own process on the same node (kappa_ops.keeper_bot). While it runs, anvil mines on demand
(automine off) so that every block is one decision round: each step of the crash writes the vol
path's values to the bot's vol source, then mines one block with the three feeds' new answers
and the arbitrageur's trades; the bot processes it (its health endpoint says when) and sends its
transactions (auction starts, bids, auction ends, hedges, vol updates), which the demo mines in
the next block, again until the bot sends nothing. Between blocks the demo reads every account
(its own observation, for the report: who turned liquidatable in which block), and at the end
reads back from the chain's events and the bot's log what the bot did.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from eth_account import Account
from eth_utils import keccak

from kappa_ops.chain import ChainReader, Snapshot, _fields, perp_market
from kappa_ops.config import ROOT, load_config
from kappa_ops.deployer import DEPLOYMENTS_DIR, Deployment, current_network, deploy
from kappa_ops.keeper_bot import KeeperBot, KeeperBotError
from kappa_ops.scenario import (
    ScenarioSettings,
    arbitrage_trade,
    expiries,
    perp_hedge_trades,
    perp_quote,
    perp_trader_orders,
    price_path,
    reserves_after,
    trader_orders,
    vol_path,
)
from kappa_ops.tx import Sender
from keeper import hedging as kh
from keeper import margin as km
from keeper import perp as kp
from keeper.black76 import black76
from keeper.orders import as_tuple
from keeper.orders import sign as sign_order
from keeper.runtime.volfeed import write_source
from keeper.series import PERP_ID, series_id, unpack_position

WAD = 10**18
REPORTS = ROOT / "reports"
BORROWER_LTV = 0.2  # the borrower's loan over its WETH collateral's value
KEEPER_DIR = ROOT / ".keeper" / "demo"  # the bot's settings, log, checkpoint, vol source
# What each market maker lets the keeper lose to hedge swaps per day (fees and impact), USD:
# 1% of its deposit.
MM_HEDGE_BUDGET_USD = 30_000


class CashPath:
    """The cash pool over the run (MarginEngine.cash_pool and cash_totals after each step):
    utilization, the indices, and the interest borrowers paid and suppliers earned, each step's
    as its opening borrow (supply) shares times the step's borrow (supply) index change (exact
    when shares do not change within a step; shares moved mid-step are counted from the next
    step), with the reserve the insurance fund is owed."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.paid = 0
        self.earned = 0
        self.path: list[float] = []
        self._last = self._read()

    def _read(self) -> tuple[int, int, int, int, int, int]:
        pool = self.engine.cash_pool()
        totals = self.engine.cash_totals()
        return (
            int(pool[0]),
            int(pool[1]),
            int(totals[0]),
            int(totals[1]),
            int(pool[4]),
            int(pool[6]),
        )

    def step(self) -> dict[str, Any]:
        now = self._read()
        (si0, bi0, s0, b0, _, _), (si, bi, _, _, u, _) = self._last, now
        self.paid += b0 * (bi - bi0) // WAD
        self.earned += s0 * max(si - si0, 0) // WAD
        self._last = now
        self.path.append(u / WAD)
        return {"utilization": u / WAD, "supply_index": si / WAD, "borrow_index": bi / WAD}

    def summary(self) -> dict[str, Any]:
        return {
            "paid_by_borrowers": self.paid / WAD,
            "earned_by_suppliers": self.earned / WAD,
            "reserve_uncollected": self._last[5] / WAD,
            "utilization_path": self.path,
            "max_utilization": max(self.path, default=0.0),
        }


@dataclass
class Trader:
    """A key pair (it signs orders; on anvil its transactions, if any, are impersonated)."""

    key: bytes
    address: str

    @classmethod
    def derive(cls, i: int, role: str = "trader") -> Trader:
        acct = Account.from_key(keccak(text=f"kappa demo {role} {i}"))
        return cls(bytes(acct.key), str(acct.address))


PERP_EVENTS = ("PerpListed", "PerpParamsSet", "PerpFill", "PerpSettled", "PerpMoved")
# Each PerpBook event's settled sides: (account field, cash field).
_PERP_SIDES: dict[str, tuple[tuple[str, str], ...]] = {
    "PerpFill": (("buyer", "buyer_cash"), ("seller", "seller_cash")),
    "PerpSettled": (("account", "cash"),),
    "PerpMoved": (("source", "source_cash"), ("target", "target_cash")),
}


def funding_flows(
    events: Iterable[tuple[str, Mapping[str, Any]]], spot: int, now: int
) -> dict[str, Any]:
    """The funding PerpBook's events moved, split from the price PnL with keeper.perp's twin.

    Replays the events (log order) through `keeper.perp.PerpBook`. Each settled side of a
    PerpFill, PerpSettled or PerpMoved has settlement cash C = floor(q ((S - P) - (F - F0)))
    (a fill's cash net of its payment n (X - S), keeper.perp.fill_payment); its funding part is
    C - q (S - P) with (q, P, F0) the position before the touch: the exact -q (F - F0) less the
    floor's remainder (< 1 wei, checked). Positions still open at (`spot`, `now`) add their
    unsettled funding as the margin model counts it, keeper.perp.funding_owed (rounded up).
    Longs and shorts net to zero at all times, so the exact funding sums to zero, and the
    protocol's roundings only take: paid - received is in [0, touches + open positions) wei.

    Returns USD amounts (`paid`, `received`, the settled and unsettled parts, `by_account`),
    the gap in wei, its bound (`touches`) and the replayed book (`book`).
    """
    book: kp.PerpBook | None = None
    settled = defaultdict(int)  # per account, USD wad * 1e18 (received > 0)
    paid = received = 0
    touches = 0
    for name, args in events:
        if name == "PerpListed":
            book = kp.PerpBook.listed(int(args["params"]), int(args["time"]))
            continue
        if book is None:
            raise kp.PerpError(f"{name} before PerpListed")
        sides = _PERP_SIDES.get(name, ())
        before = {str(args[a]): book.positions.get(str(args[a]), kp.Position()) for a, _ in sides}
        book.apply(name, dict(args))
        s = int(args["spot"])
        payment = 0
        if name == "PerpFill":
            payment = kp.fill_payment(int(args["size"]), int(args["price"]), s)
        for who, cash_key in sides:
            account, old = str(args[who]), before[str(args[who])]
            if old.size == 0:
                continue  # a new position settles nothing
            cash = int(args[cash_key]) + {"buyer": payment, "seller": -payment}.get(who, 0)
            funding = cash * WAD - old.size * (s - old.price)
            exact = -old.size * (book.positions[account].index - old.index)
            if not exact - WAD < funding <= exact:
                raise kp.PerpError(f"{name}: funding {funding} is not the floor of {exact}")
            settled[account] += funding
            paid += max(-funding, 0)
            received += max(funding, 0)
            touches += 1
    if book is None:
        raise kp.PerpError("no PerpListed event")
    index = kp.index_at(book.market, spot, max(now, book.market.funding_time))
    unsettled: dict[str, int] = {}
    for account, pos in book.positions.items():
        if pos.size:
            unsettled[account] = -kp.funding_owed(pos, index) * WAD
    u_paid = sum(max(-x, 0) for x in unsettled.values())
    u_received = sum(max(x, 0) for x in unsettled.values())
    usd = float(WAD * WAD)
    accounts = set(settled) | set(unsettled)
    return {
        "paid": (paid + u_paid) / usd,
        "received": (received + u_received) / usd,
        "settled_paid": paid / usd,
        "settled_received": received / usd,
        "unsettled_paid": u_paid / usd,
        "unsettled_received": u_received / usd,
        "gap_wei": (paid + u_paid - received - u_received) / WAD,
        "touches": touches + len(unsettled),
        "by_account": {
            a: (settled.get(a, 0) + unsettled.get(a, 0)) / usd for a in sorted(accounts)
        },
        "book": book,
    }


@dataclass(frozen=True)
class Impersonated:
    """An address anvil sends from without its key (anvil_impersonateAccount)."""

    address: str


@dataclass
class Stats:
    gas: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    tx: int = 0

    def add(self, kind: str, receipt: Any) -> Any:
        self.gas[kind].append(int(receipt.gas_used))
        self.tx += 1
        return receipt

    def summary(self) -> dict[str, dict[str, int]]:
        return {
            k: {
                "count": len(v),
                "median": int(np.median(v)),
                "max": int(max(v)),
                "total": int(sum(v)),
            }
            for k, v in sorted(self.gas.items())
        }


class CrashDemo:
    def __init__(
        self,
        settings: ScenarioSettings,
        log: Callable[[str], None] = print,
        records_dir: Path = DEPLOYMENTS_DIR,
        report_dir: Path = REPORTS,
        charts: bool = True,
        keeper_dir: Path = KEEPER_DIR,
    ) -> None:
        from ape import accounts, chain

        self.s = settings
        self.log = log
        self.chain = chain
        self.records_dir = records_dir
        self.report_dir = report_dir
        self.charts = charts
        self.keeper_dir = Path(keeper_dir)
        self.vol_source = self.keeper_dir / "vol-source.json"
        self.turns: list[dict[str, Any]] = []  # accounts turned liquidatable (observe)
        self.waiting: dict[str, dict[str, Any]] = {}  # ... and not auctioned yet
        self.stats = Stats()
        self.sender = Sender()
        t = accounts.test_accounts
        self.keeper, self.mms, self.bidder, self.arb = t[0], [t[1], t[2]], t[3], t[4]
        self.traders = [Trader.derive(i) for i in range(settings.traders)]
        self.perp_traders = [Trader.derive(i, "perp trader") for i in range(settings.perp_traders)]
        self.lp = Trader.derive(0, "perp liquidity")
        self.perp_nonce = 0
        self.perp_hedge_log: list[dict[str, Any]] = []
        self.perp_log: list[tuple[str, dict[str, Any]]] = []  # PerpBook's events so far
        self.perp_logged = 0  # ... up to this block, exclusive

    # -- helpers ---------------------------------------------------------------------------

    def send(self, kind: str, method: Any, *args: Any, sender: Any) -> Any:
        return self.stats.add(kind, self.sender.send(method, *args, sender=sender))

    def send_batch(self, txs: list[tuple[str, Any, tuple[Any, ...], Any]]) -> list[Any]:
        """Independent transactions [(kind, method, args, sender)], pipelined on anvil."""
        receipts = self.sender.send_many([(m, a, snd) for _, m, a, snd in txs])
        for (kind, *_), receipt in zip(txs, receipts, strict=True):
            self.stats.add(kind, receipt)
        return receipts

    def now(self) -> int:
        return self.sender.timestamp()

    def sign(self, trader: Trader, order: dict[str, Any]) -> bytes:
        # The order book verifies signatures: its address is the EIP-712 domain's contract.
        chain_id = int(self.chain.chain_id)
        return sign_order(trader.key, chain_id, str(self.order_book.address), order)

    # -- setup -----------------------------------------------------------------------------

    def setup(self) -> None:
        network = current_network()
        if not network.is_local:
            raise RuntimeError(f"the demo runs on a local network only, not {network.label}")
        config = load_config(ROOT / "deploy" / "networks" / f"{network.ecosystem}-local.yaml")
        self.config = config
        self.dep: Deployment = deploy(config, records_dir=self.records_dir, log=self.log)
        d = self.dep
        self.engine, self.oracle, self.vol = d["engine"], d["oracle"], d["vol_oracle"]
        self.order_book = d["order_book"]
        self.perp_book = d["perp_book"]
        self.perp_band = perp_market(self.perp_book.market()).params.band / WAD
        self.perp_events(int(self.chain.provider.web3.eth.block_number))  # PerpListed
        self.usd, self.weth = d["usd"], d["weth"]
        self.liquidator = d.contracts.get("liquidator")
        self.pools = [d[p.name] for p in config.pools]
        self.fees = [p.fee_bps for p in config.pools]
        self.feeds = [d[f"feed_{x}"] for x in config.mocks.feed_decimals]  # type: ignore[union-attr]
        self.feed_decimals = list(config.mocks.feed_decimals)  # type: ignore[union-attr]
        self.usd_scale = 10**config.mocks.cash.decimals  # type: ignore[union-attr]
        self.reader = ChainReader(
            self.engine, self.oracle, self.vol, self.liquidator, self.perp_book
        )
        self.params = self.reader.params

        s = self.s
        k = self.keeper
        self.expiries = expiries(self.now(), s.tenors_days)
        self.send_batch(
            [
                ("vol_update", self.vol.update, (e, int(atm * WAD), int(s.skew * WAD)), k)
                for e, atm in zip(self.expiries, s.atm_vol, strict=True)
            ]
        )
        # Series: calls then puts, per expiry.
        self.series: list[tuple[int, float, bool]] = []  # (expiry, strike, is_call)
        for is_call, strikes in ((True, s.call_strikes), (False, s.put_strikes)):
            for e in self.expiries:
                for m in strikes:
                    self.series.append((e, round(s.spot * m), is_call))
        self.series_ids = [series_id(e, k * WAD, is_call) for e, k, is_call in self.series]
        # A series id is its terms: one listed by an earlier run on this chain is reused.
        self.send_batch(
            [
                ("list_series", self.engine.list_series, (e, strike * WAD, is_call), k)
                for (e, strike, is_call), sid in zip(self.series, self.series_ids, strict=True)
                if not self.engine.series(sid)[3]
            ]
        )
        self.reader.track_expiries(self.expiries)
        self.log(
            f"listed {len(self.series)} series over {len(self.expiries)} expiries "
            f"({', '.join(f'{d}d' for d in s.tenors_days)})"
        )

        # Cash for everyone comes from the keeper's mock USDC through deposit_for.
        self.send("mint", self.usd.mint, k.address, 10**15 * self.usd_scale, sender=k)
        self.send("approve", self.usd.approve, self.engine.address, 2**256 - 1, sender=k)
        for mm in self.mms:
            self.fund(mm.address, 3_000_000)
            # The keeper bot's signer hedges for the market makers: what it may lose to swaps
            # per day.
            self.send(
                "set_operator", self.engine.set_operator, self.bidder.address, True, sender=mm
            )
            self.send(
                "set_hedge_budget",
                self.engine.set_hedge_budget,
                MM_HEDGE_BUDGET_USD * WAD,
                sender=mm,
            )
        self.fund(self.bidder.address, 20_000_000)
        if not self.vol.is_feeder(self.bidder.address):
            self.send("add_feeder", self.vol.add_feeder, self.bidder.address, sender=k)
        if self.liquidator is not None:
            self.send("approve", self.usd.approve, self.liquidator.address, 2**256 - 1, sender=k)
            self.send(
                "deposit_insurance",
                self.liquidator.deposit_insurance,
                250_000 * self.usd_scale,
                sender=k,
            )
        # The arbitrageur's inventory.
        a = self.arb
        self.send("mint", self.usd.mint, a.address, 10**13 * self.usd_scale, sender=k)
        self.send("mint", self.weth.mint, a.address, 10**24, sender=k)
        self.send_batch(
            [
                ("approve", token.approve, (pool.address, 2**256 - 1), a)
                for pool in self.pools
                for token in (self.usd, self.weth)
            ]
        )
        self.seed_traders()
        self.seed_perp()
        self.perp_events(int(self.chain.provider.web3.eth.block_number))
        self.borrow()

    def borrow(self) -> None:
        """A borrower: the arbitrageur posts WETH and borrows cash against it (a fifth of the
        collateral's value) until the cash pool's utilization is `borrow_utilization`, so the
        pool has interest to report."""
        a, s = self.arb, self.s
        pool = self.engine.cash_pool()
        supply, borrows = int(pool[2]), int(pool[3])  # USD wads
        borrowed_wad = max(round(s.borrow_utilization * supply) - borrows, 0)
        borrowed = borrowed_wad * self.usd_scale // WAD  # token units, rounded down
        posted = -(-borrowed_wad * WAD // round(BORROWER_LTV * s.spot * WAD))  # WETH wei, up
        self.send("approve", self.weth.approve, self.engine.address, 2**256 - 1, sender=a)
        self.send("deposit", self.engine.deposit, self.weth.address, posted, sender=a)
        self.send("withdraw", self.engine.withdraw, self.usd.address, borrowed, a.address, sender=a)

    def fund(self, account: str, usd: float) -> None:
        amount = round(usd * self.usd_scale)
        if amount > 0:
            self.send(
                "deposit",
                self.engine.deposit_for,
                account,
                self.usd.address,
                amount,
                sender=self.keeper,
            )

    def fair_price(self, idx: int, spot: float, market: km.Market) -> float:
        e, strike, is_call = self.series[idx]
        j = int(np.searchsorted(market.expiries, e))
        sigma = float(
            km.smile(
                market.atm[j],
                market.skew[j],
                strike,
                spot,
                market.vol_min[j],
                market.vol_max[j],
                market.stale_markup[j],
            )
        )
        tau = (e - market.now) / km.SECONDS_PER_YEAR
        return float(black76(spot, strike, tau, sigma, is_call).price)

    def seed_traders(self) -> None:
        s = self.s
        n_calls = len(s.call_strikes) * len(self.expiries)
        n_puts = len(s.put_strikes) * len(self.expiries)
        orders = trader_orders(s, n_calls, n_puts)
        snap = self.reader.snapshot([], self.now())
        market = snap.market
        spot = market.spot
        deposits: list[tuple[str, Any, tuple[Any, ...], Any]] = []
        fills: list[tuple[str, Any, tuple[Any, ...], Any]] = []
        for o in orders:
            trader = self.traders[o.trader]
            mm = self.mms[o.trader % 2]
            e, strike, is_call = self.series[o.series]
            fair = self.fair_price(o.series, spot, market)
            # The market maker earns 3% of the premium either way.
            price = fair * (1.03 if o.is_buy else 0.97)
            price_wad = int(price * 1e6) * 10**12
            size_wad = round(o.size * 10) * 10**17
            premium = size_wad * price_wad / WAD / WAD
            # Margin need of the trader's book after the trade (keeper.margin, float64).
            q = o.size if o.is_buy else -o.size
            cash_after = -premium if o.is_buy else premium
            pf = km.Portfolios(
                cash=np.array([cash_after]),
                underlying=np.zeros(1),
                strike=np.array([[float(strike)]]),
                expiry=np.array([[e]]),
                is_call=np.array([[is_call]]),
                size=np.array([[q]]),
            )
            h_im = float(km.evaluate(pf, market, self.params).health_im[0])
            need = max(-h_im, 0.0)
            deposit = need * (1.0 + o.cushion) + (10.0 if o.is_buy else 1.0)
            amount = round(deposit * self.usd_scale)
            deposits.append(
                (
                    "deposit",
                    self.engine.deposit_for,
                    (trader.address, self.usd.address, amount),
                    self.keeper,
                )
            )
            order = {
                "maker": trader.address,
                "series_id": self.series_ids[o.series],
                "is_buy": o.is_buy,
                "size": size_wad,
                "price": price_wad,
                "nonce": 0,
                "deadline": self.now() + 3600,
            }
            sig = self.sign(trader, order)
            struct = as_tuple(order)
            fills.append(("fill", self.engine.fill, (struct, sig, size_wad, mm.address), mm))
        self.send_batch(deposits)
        self.send_batch(fills)
        self.log(
            f"seeded {len(orders)} traders ({sum(o.is_buy for o in orders)} call buyers, "
            f"{sum(not o.is_buy for o in orders)} put sellers, {s.near_limit} near their limit) "
            f"against {len(self.mms)} market makers"
        )

    # -- the perp ---------------------------------------------------------------------------

    def perp_order(
        self, maker: Trader, is_buy: bool, size: float, price: float
    ) -> tuple[tuple[Any, ...], bytes, int]:
        """A signed perp order (the struct, its signature, its size in wads), the price in
        whole micro-USD."""
        size_wad = round(size * 100) * 10**16
        order = {
            "maker": maker.address,
            "series_id": PERP_ID,
            "is_buy": is_buy,
            "size": size_wad,
            "price": round(price * 1e6) * 10**12,
            "nonce": self.perp_nonce,
            "deadline": self.now() + 3600,
        }
        self.perp_nonce += 1
        return as_tuple(order), self.sign(maker, order), size_wad

    def seed_perp(self) -> None:
        """The perp liquidity account (a key pair; anvil sends its transactions by
        impersonation) is funded and takes the perp traders' signed orders at its own quotes;
        then the market makers take its quotes for their perp leg."""
        s, lp = self.s, Impersonated(self.lp.address)
        self.rpc("anvil_impersonateAccount", [lp.address])
        self.rpc("anvil_setBalance", [lp.address, hex(10**21)])
        self.fund(lp.address, s.perp_lp_deposit)
        orders = perp_trader_orders(s)
        market = self.reader.snapshot([], self.now()).market
        spot = market.spot
        deposits: list[tuple[str, Any, tuple[Any, ...], Any]] = []
        fills: list[tuple[str, Any, tuple[Any, ...], Any]] = []
        inventory = 0.0
        for o in orders:
            trader = self.perp_traders[o.trader]
            price = float(perp_quote(spot, inventory, not o.is_buy, s, self.perp_band))
            q = o.size if o.is_buy else -o.size
            pf = km.Portfolios(
                cash=np.array([-q * (price - spot)]),  # the fill's payment
                underlying=np.zeros(1),
                strike=np.ones((1, 1)),
                expiry=np.zeros((1, 1), dtype=np.int64),
                is_call=np.zeros((1, 1), dtype=bool),
                size=np.zeros((1, 1)),
                perp_size=np.array([q]),
                perp_price=np.array([spot]),
                perp_owed=np.zeros(1),
            )
            need = max(-float(km.evaluate(pf, market, self.params).health_im[0]), 0.0)
            deposit = need * (1.0 + o.cushion) + 1.0
            deposits.append(
                (
                    "deposit",
                    self.engine.deposit_for,
                    (trader.address, self.usd.address, round(deposit * self.usd_scale)),
                    self.keeper,
                )
            )
            struct, sig, size_wad = self.perp_order(trader, o.is_buy, o.size, price)
            fills.append(("perp_fill", self.engine.fill, (struct, sig, size_wad, lp.address), lp))
            inventory -= q
        self.send_batch(deposits)
        self.send_batch(fills)
        longs = sum(o.is_buy for o in orders)
        self.log(
            f"seeded {len(orders)} perp traders ({longs} long, {len(orders) - longs} short, "
            f"{min(s.perp_near_limit, longs)} near their limit) against the perp liquidity "
            f"account (inventory {inventory:+.1f} ETH)"
        )
        snap = self.reader.snapshot([*(m.address for m in self.mms), lp.address], self.now())
        txs = self.perp_hedge_txs(snap, spot, 0)
        self.send_batch(txs)

    def perp_hedge_txs(
        self, snap: Snapshot, spot: float, step: int
    ) -> list[tuple[str, Any, tuple[Any, ...], Any]]:
        """The market makers' perp leg at the coming block's index `spot`: each trades toward
        `-perp_hedge_share` of its options delta (scenario.perp_hedge_trades), taking the
        liquidity account's quote where keeper.hedging.hedge_venue prices the perp below the
        pools (their reserves after this block's arbitrage); otherwise that part of the delta
        is left to the keeper's pool hedge. Both market makers see the block's opening quotes."""
        s = self.s
        idx = [snap.index(m.address) for m in self.mms]
        sub = snap.portfolios.take(idx)
        market = dataclasses.replace(snap.market, spot=spot)
        option_delta = km.account_greeks(sub, market).delta - sub.underlying - sub.perp_size
        gross = np.abs(sub.size).sum(axis=1)
        trades = perp_hedge_trades(option_delta, sub.perp_size, gross, s)
        if not np.any(trades):
            return []
        inventory = snap.perp[snap.index(self.lp.address)][0] / WAD
        target = spot * self.usd_scale / WAD
        reserves = [
            reserves_after(ru, rc, fee, arbitrage_trade(ru, rc, fee, target))
            for (ru, rc), fee in zip(self.reserves(), self.fees, strict=True)
        ]
        bid, ask = perp_quote(spot, inventory, np.array([True, False]), s, self.perp_band)
        rate = int(self.perp_book.funding_rate()) / WAD
        choice = kh.hedge_venue(
            -trades,
            spot,
            np.array([r[0] for r in reserves]),
            np.array([r[1] for r in reserves]),
            np.array(self.fees),
            kh.PerpQuotes(
                price=np.array([bid, ask]), size=np.full(2, 1e9), is_bid=np.array([True, False])
            ),
            rate,
            s.perp_holding_hours,
            self.perp_band,
            underlying_held=sub.underlying,
            cash_decimals=self.config.mocks.cash.decimals,  # type: ignore[union-attr]
        )
        txs: list[tuple[str, Any, tuple[Any, ...], Any]] = []
        for j, mm in enumerate(self.mms):
            t = float(trades[j])
            if t == 0:
                continue
            venue = int(choice.venue[j])
            price = float(ask if t > 0 else bid)
            self.perp_hedge_log.append(
                {
                    "step": step,
                    "account": mm.address,
                    "option_delta": float(option_delta[j]),
                    "trade": t,
                    "venue": {kh.VENUE_PERP: "perp", kh.VENUE_POOLS: "pools"}.get(venue, "none"),
                    "perp_cost": float(choice.perp_cost[j]),
                    "pool_cost": float(choice.pool_cost[j]),
                    "price": price,
                    "spot": spot,
                }
            )
            if venue != kh.VENUE_PERP:
                continue
            # The liquidity account sells when the market maker buys.
            struct, sig, size_wad = self.perp_order(self.lp, t < 0, abs(t), price)
            txs.append(("perp_hedge", self.engine.fill, (struct, sig, size_wad, mm.address), mm))
        return txs

    def perp_state(self) -> dict[str, Any]:
        """The perp market now: mark premium M / S - 1 (the twin's mark of the stored market at
        the oracle's index), the EMA premium, the funding rate per hour, open interest, and
        the liquidity account's inventory."""
        book = self.perp_book
        price, market, oi, rate, lp = self.reader.batch(
            [
                (self.oracle.price, ()),
                (book.market, ()),
                (book.open_interest, ()),
                (book.funding_rate, ()),
                (book.position, (self.lp.address,)),
            ]
        )
        spot = int(_fields(price)[0])
        m = perp_market(market)
        return {
            "perp_mark_premium": kp.mark(m, spot) / spot - 1.0,
            "perp_ema_premium": m.premium / WAD,
            "perp_funding_rate": int(rate) / WAD,
            "perp_open_interest": int(oi) / WAD,
            "perp_lp_inventory": int(_fields(lp)[0]) / WAD,
        }

    # -- each block ------------------------------------------------------------------------

    @property
    def accounts(self) -> list[str]:
        return [
            *(m.address for m in self.mms),
            self.bidder.address,
            *(t.address for t in self.traders),
            *(t.address for t in self.perp_traders),
            self.lp.address,
        ]

    def market_txs(self, spot: float) -> list[tuple[str, Any, tuple[Any, ...], Any]]:
        """The three mock feeds' new answers around `spot`."""
        spread = self.s.feed_spread
        moves = (1 - spread, 1.0, 1 + spread)
        return [
            ("feed_update", feed.set_answer, (round(spot * m * 10**dec),), self.keeper)
            for feed, dec, m in zip(self.feeds, self.feed_decimals, moves, strict=False)
        ]

    def reserves(self) -> list[tuple[int, int]]:
        """(underlying, cash) reserves per pool (token0 is the underlying)."""
        out = self.reader.batch([(p.get_reserves, ()) for p in self.pools])
        return [(int(r[0]), int(r[1])) for r in out]

    def arbitrage(self, spot: float) -> None:
        self.send_batch(self.arbitrage_txs(spot))

    def arbitrage_txs(self, spot: float) -> list[tuple[str, Any, tuple[Any, ...], Any]]:
        """The arbitrageur's trades that bring every pool to `spot`."""
        target = spot * self.usd_scale / WAD  # cash units per underlying unit
        txs: list[tuple[str, Any, tuple[Any, ...], Any]] = []
        for pool, fee, (ru, rc) in zip(self.pools, self.fees, self.reserves(), strict=True):
            trade = arbitrage_trade(ru, rc, fee, target)
            if trade is None:
                continue
            sell_underlying, amount = trade
            token = self.weth if sell_underlying else self.usd
            txs.append(
                ("arbitrage", pool.swap, (token.address, amount, 0, self.arb.address), self.arb)
            )
        return txs

    def mm_delta_single(self, snap: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pf = snap.portfolios
        greeks = km.account_greeks(pf, snap.market)
        gross = np.abs(pf.size).sum(axis=1)
        return greeks.delta, greeks.delta - pf.underlying - pf.perp_size, gross

    def mm_delta(self, snap: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(net delta, options-only delta, gross option size) of the market makers (net: the
        options, the underlying and the perp)."""
        idx = [snap.index(m.address) for m in self.mms]
        sub = snap.portfolios.take(idx)
        greeks = km.account_greeks(sub, snap.market)
        gross = np.abs(sub.size).sum(axis=1)
        return greeks.delta, greeks.delta - sub.underlying - sub.perp_size, gross

    # -- the keeper bot ---------------------------------------------------------------------

    def write_vol_source(self, atm: Any, skew: float) -> None:
        """The vol path's values for this block, where the bot's vol feeder reads them."""
        entries = [(e, float(a), float(skew)) for e, a in zip(self.expiries, atm, strict=True)]
        write_source(self.vol_source, entries, time.time())

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        return self.chain.provider.make_request(method, params or [])

    def mine(self) -> tuple[int, float]:
        """Mine one block (automine is off while the bot runs): its number and wall time."""
        self.rpc("evm_mine", [])
        return int(self.chain.provider.web3.eth.block_number), time.time()

    def play(self, txs: list[tuple[str, Any, tuple[Any, ...], Any]]) -> tuple[int, float]:
        """The market's transactions of this block, mined together in one block."""
        plain = [(m, a, snd) for _, m, a, snd in txs]
        hashes = self.sender.submit(plain)
        block, wall = self.mine()
        for (kind, *_), receipt in zip(txs, self.sender.collect(plain, hashes), strict=True):
            self.stats.add(kind, receipt)
        return block, wall

    def first_bot_block(self, tries: int = 60) -> int:
        """Mine until the bot processes a block: Silverback subscribes to new heads only after
        its startup task, so the first block or two may come before it listens."""
        for _ in range(tries):
            block, _ = self.mine()
            try:
                self.bot.wait_processed(block, timeout=2.0)
                return block
            except KeeperBotError:
                if self.bot.proc is not None and self.bot.proc.poll() is not None:
                    raise
        raise KeeperBotError(f"the keeper bot processed no block in {tries} tries")

    def react(self, max_blocks: int = 8) -> list[int]:
        """Let the bot act: wait until it has processed the head, mine what it sent, again
        until it sends nothing (at most `max_blocks` blocks)."""
        blocks: list[int] = []
        head = int(self.chain.provider.web3.eth.block_number)
        for _ in range(max_blocks):
            self.bot.wait_processed(head)
            if int(self.rpc("txpool_status")["pending"], 16) == 0:
                break
            head, wall = self.mine()
            blocks.append(head)
            self.observe(head, wall)
        return blocks

    def observe(self, block: int, wall: float) -> tuple[Snapshot, km.MarginResult]:
        """Every account at `block` (the demo's own view, for the report): which accounts are
        liquidatable (the engine's `margin` view confirms keeper.margin's candidates) without
        an open auction, and when each waiting one got its auction or recovered."""
        snap = self.reader.snapshot(self.accounts, self.now())
        result = km.evaluate(snap.portfolios, snap.market, self.params)
        bot = self.bidder.address
        cand = [
            i
            for i, a in enumerate(snap.addresses)
            if a != bot and result.health_mm[i] < 1.0 and not snap.auction_open[i]
        ]
        views = self.reader.batch([(self.engine.margin, (snap.addresses[i],)) for i in cand])
        now_liquidatable = {
            snap.addresses[i] for i, v in zip(cand, views, strict=True) if int(_fields(v)[2]) < 0
        }
        for a in list(self.waiting):
            if snap.auction_open[snap.index(a)] or a not in now_liquidatable:
                turn = self.waiting.pop(a)
                turn["resolved"] = block
                turn["outcome"] = "started" if snap.auction_open[snap.index(a)] else "recovered"
        for a in sorted(now_liquidatable - set(self.waiting)):
            turn = {"account": a, "block": block, "wall": wall}
            self.turns.append(turn)
            self.waiting[a] = turn
        return snap, result

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self.setup()
        s = self.s
        accounts = self.accounts
        prices = price_path(s)
        atm, skew = vol_path(s)
        self.write_vol_source(np.array(s.atm_vol), s.skew)
        provider = self.chain.provider
        self.bot = KeeperBot(
            str(provider.http_uri),
            self.records_dir,
            self.keeper_dir,
            self.vol_source,
            perp_funding_usd=s.settle_perp_usd,
        )
        self.log(f"starting the keeper bot (log {self.bot.log_path})")
        self.rpc("evm_setAutomine", [False])
        steps: list[dict[str, Any]] = []
        try:
            self.bot.start()
            first_block = int(provider.web3.eth.block_number) + 1
            self.first_bot_block()
            self.react()  # the bot's first blocks: the market makers' initial hedge
            snap = self.reader.snapshot(accounts, self.now())
            # What each market maker holds against its options once hedged: underlying + perp.
            mm_rows = [snap.index(m.address) for m in self.mms]
            base_underlying = np.array(
                [(snap.underlying_wad[i] + snap.perp[i][0]) / WAD for i in mm_rows]
            )
            self.log(
                f"{len(accounts)} accounts; market makers hedged by the bot: "
                + ", ".join(f"{d:+.2f}" for d in self.mm_delta(snap)[0])
                + " ETH net delta"
            )
            self.cash = CashPath(self.engine)
            for t in range(s.steps):
                spot = float(prices[t])
                self.write_vol_source(atm[t], float(skew[t]))
                self.rpc("evm_increaseTime", [s.block_seconds])
                pre = self.reader.snapshot(
                    [*(m.address for m in self.mms), self.lp.address], self.now()
                )
                n_hedges = len(self.perp_hedge_log)
                perp_txs = self.perp_hedge_txs(pre, spot, t + 1)
                # The feeds first: the perp fills settle at this block's index.
                b, wall = self.play(self.market_txs(spot) + self.arbitrage_txs(spot) + perp_txs)
                snap, result = self.observe(b, wall)
                net_before, opt, gross = self.mm_delta(snap)
                blocks = self.react()
                after = self.reader.snapshot([m.address for m in self.mms], self.now())
                net_after, _, _ = self.mm_delta_single(after)
                h_mm, h_im = result.health_mm, result.health_im
                rec: dict[str, Any] = {
                    "step": t + 1,
                    "block": b,
                    "last_block": blocks[-1] if blocks else b,
                    "spot": snap.market.spot,
                    "confidence": snap.market.confidence,
                    "atm_vol": [float(x) for x in atm[t]],
                    "skew": float(skew[t]),
                    "liquidatable": int(np.sum(h_mm < 0)),
                    "below_im": int(np.sum((h_im < 0) & (h_mm >= 0))),
                    "healthy": int(np.sum(h_im >= 0)),
                    "health_mm_pct": [float(x) for x in np.percentile(h_mm, [5, 25, 50, 75, 95])],
                    "mm_delta_before": [float(x) for x in net_before],
                    "mm_delta_after": [float(x) for x in net_after],
                    "mm_delta_unhedged": [float(x) for x in opt + base_underlying],
                    "mm_gross": [float(x) for x in gross],
                }
                rec.update(self.cash.step())
                rec.update(self.perp_state())
                self.perp_events(rec["last_block"])
                rec["perp_hedges"] = self.perp_hedge_log[n_hedges:]
                rec["mm_perp"] = [after.perp[after.index(m.address)][0] / WAD for m in self.mms]
                steps.append(rec)
                self.log(
                    f"block {t + 1:>3}/{s.steps}  ETH {spot:8.2f}  vol {atm[t][0]:.2f}  "
                    f"liquidatable {rec['liquidatable']:>2}  below IM {rec['below_im']:>2}  "
                    f"bot blocks {len(blocks)}  MM delta "
                    + " ".join(f"{d:+.3f}" for d in net_after)
                    + f"  perp premium {rec['perp_mark_premium'] * 1e4:+.1f} bp"
                )
            last_block = int(provider.web3.eth.block_number)
            keeper: dict[str, Any] = {"health": self.bot.health(), "metrics": self.bot.metrics()}
        finally:
            code = self.bot.stop()
            self.rpc("evm_setAutomine", [True])
        keeper["exit_code"] = code
        # Relative to the checkout, so the committed report names no machine's paths.
        log_path = self.bot.log_path.resolve()
        inside = log_path.is_relative_to(ROOT)
        keeper["log"] = str(log_path.relative_to(ROOT) if inside else log_path)
        elapsed = time.monotonic() - started
        return self.report(steps, first_block, last_block, keeper, elapsed)

    def bot_transactions(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """The bot's sent transactions by hash (with their final status) and its lines."""
        lines = self.bot.lines()
        sent = {x["hash"]: dict(x) for x in lines if x["event"] == "sent"}
        for x in lines:
            if x["event"] == "final" and x["hash"] in sent:
                sent[x["hash"]]["final"] = x
        return sent, lines

    def reactions(self, lines: list[dict[str, Any]], starts: dict[str, list[int]]) -> list[Any]:
        """Per account that turned liquidatable: blocks and milliseconds to its auction start
        (the block of its AuctionStarted, the wall time the bot's start_auction reached the
        node, from the wall time the block in which it turned was mined)."""
        sends: dict[str, list[float]] = defaultdict(list)
        for x in lines:
            if x["event"] == "sent" and x["kind"] == "start_auction":
                sends[str(x["account"]).lower()].append(float(x["ts"]))
        out = []
        for turn in self.turns:
            a = turn["account"]
            hi = turn.get("resolved")
            blocks = [b for b in starts.get(a.lower(), []) if b > turn["block"]]
            blocks = [b for b in blocks if hi is None or b <= hi]
            sent = [ts for ts in sends.get(a.lower(), []) if ts >= turn["wall"] - 1e-3]
            out.append(
                {
                    "account": a,
                    "block": turn["block"],
                    "outcome": turn.get("outcome", "waiting"),
                    "auction_block": blocks[0] if blocks else None,
                    "blocks": blocks[0] - turn["block"] if blocks else None,
                    "ms": round((sent[0] - turn["wall"]) * 1e3, 1) if blocks and sent else None,
                }
            )
        return out

    def report(
        self,
        steps: list[dict[str, Any]],
        first_block: int,
        last_block: int,
        keeper: dict[str, Any],
        elapsed: float,
    ) -> dict[str, Any]:
        """reports/demo.json: what the bot did, read back from the chain's events and the
        bot's log, per step of the crash."""
        liq, eng = self.liquidator, self.engine
        assert liq is not None
        span = (first_block, last_block + 1)
        started = list(liq.AuctionStarted.range(*span))
        bids = list(liq.Bid.range(*span))
        mm_addresses = {m.address.lower() for m in self.mms}
        swaps = [x for x in eng.Swap.range(*span) if str(x.account).lower() in mm_addresses]
        sent, lines = self.bot_transactions()
        by_block: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for tx in sent.values():
            final = tx.get("final")
            if final is not None and final.get("block") is not None:
                by_block[int(final["block"])].append(tx)
                kind = {"swap": "hedge_swap"}.get(tx["kind"], tx["kind"])
                if final.get("gas_used") is not None:
                    self.stats.gas[kind].append(int(final["gas_used"]))
                    self.stats.tx += 1
        bids_failed = sum(
            1
            for tx in sent.values()
            if tx["kind"] == "bid" and tx.get("final", {}).get("status") == "reverted"
        )
        hedges = [self.hedge_record(x, by_block) for x in swaps]
        starts: dict[str, list[int]] = defaultdict(list)
        for x in started:
            starts[str(x.account).lower()].append(int(x.block_number))
        reactions = self.reactions(lines, starts)
        # Per step: what the bot did in the blocks from the step's market move to the next.
        edges = [r["block"] for r in steps] + [last_block + 1]
        fund_start = int(liq.insurance_fund(block_id=first_block - 1))
        for k, rec in enumerate(steps):
            lo, hi = edges[k], edges[k + 1]
            inside = [x for x in bids if lo <= int(x.block_number) < hi]
            fees = sum(int(x.fund_fee) for x in inside)
            before = int(liq.insurance_fund(block_id=lo - 1))
            after = int(liq.insurance_fund(block_id=hi - 1))
            rec["auctions_started"] = sum(lo <= int(x.block_number) < hi for x in started)
            rec["liquidations"] = len(inside)
            rec["insurance_fund_used"] = max(before + fees - after, 0) / WAD
            rec["hedges"] = [h for h in hedges if lo <= h["block"] < hi]
            rec["bids_failed"] = sum(
                1
                for b in range(lo, hi)
                for tx in by_block.get(b, [])
                if tx["kind"] == "bid" and tx["final"]["status"] == "reverted"
            )
        perp = self.perp_report(first_block, last_block, sent)
        fund_end = int(liq.insurance_fund(block_id=last_block))
        fees_total = sum(int(x.fund_fee) for x in bids)
        bad_debt = int(liq.bad_debt()) / WAD
        worst = max((h["ratio_after"] for h in hedges), default=0.0)
        timed = [r for r in reactions if r["blocks"] is not None]
        ms = [r["ms"] for r in timed if r["ms"] is not None]
        report = {
            "network": self.dep.network,
            "chain_id": self.dep.chain_id,
            "accounts": len(self.accounts),
            "steps": len(steps),
            "liquidations": len(bids),
            "auctions_started": len(started),
            "bad_debt": bad_debt,
            "insurance_fund_used": max(fund_start + fees_total - fund_end, 0) / WAD,
            "insurance_fund_end": fund_end / WAD,
            "bids_failed": bids_failed,
            "hedges": len(hedges),
            "max_abs_delta_after_hedge": worst,
            "keeper_reaction_blocks_max": max((r["blocks"] for r in timed), default=None),
            "keeper_reaction_ms_p50": float(np.median(ms)) if ms else None,
            "keeper_reactions": len(timed),
            "keeper_missed": sum(
                r["outcome"] != "recovered" and r["blocks"] is None for r in reactions
            ),
            "keeper": {
                **keeper,
                "signer": self.bidder.address,
                "transactions": len(sent),
                "by_kind": dict(sorted(Counter(tx["kind"] for tx in sent.values()).items())),
                "reverted": sum(
                    tx.get("final", {}).get("status") == "reverted" for tx in sent.values()
                ),
                "faults": [x for x in lines if x["event"] in ("error", "send_error", "drift")],
            },
            "gas": self.stats.summary(),
            "transactions": self.stats.tx,
            "runtime_s": round(elapsed, 1),
            "contracts": {n: self.dep.address(n) for n in self.dep.contracts},
            "settings": {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in self.s.__dict__.items()
            },
            "interest": self.cash.summary(),
            **perp,
            "chain_seconds": int(self.chain.blocks[last_block].timestamp)
            - int(self.chain.blocks[first_block].timestamp),
            "reaction_log": reactions,
            "hedge_log": hedges,
            "step_log": steps,
        }
        self.report_dir.mkdir(parents=True, exist_ok=True)
        (self.report_dir / "demo.json").write_text(json.dumps(report, indent=2) + "\n")
        if self.charts:
            from kappa_ops.charts import write_charts

            write_charts(report, self.report_dir)
        self.final_table(report)
        return report

    def perp_events(self, last_block: int) -> list[tuple[str, dict[str, Any]]]:
        """Every PerpBook event from its deployment to `last_block`, in log order: collected
        as the run goes (anvil keeps only the latest blocks' logs, kappa_ops.anvil), each
        range with one eth_getLogs decoded with the book's ABI."""
        if last_block >= self.perp_logged:
            self.perp_log += self._perp_logs(self.perp_logged, last_block)
            self.perp_logged = last_block + 1
        return [(name, args) for name, args in self.perp_log if args["block"] <= last_block]

    def _perp_logs(self, start: int, end: int) -> list[tuple[str, dict[str, Any]]]:
        provider = self.chain.provider
        raw = provider.web3.eth.get_logs(
            {"fromBlock": start, "toBlock": end, "address": str(self.perp_book.address)}
        )
        entries = [
            {
                "address": str(x["address"]),
                "topics": ["0x" + bytes(t).hex() for t in x["topics"]],
                "data": "0x" + bytes(x["data"]).hex(),
                "blockNumber": int(x["blockNumber"]),
                "blockHash": "0x" + bytes(x["blockHash"]).hex(),
                "transactionHash": "0x" + bytes(x["transactionHash"]).hex(),
                "transactionIndex": int(x["transactionIndex"]),
                "logIndex": int(x["logIndex"]),
            }
            for x in raw
        ]
        abis = [e for e in self.perp_book.contract_type.events if e.name in PERP_EVENTS]
        out = []
        for d in provider.network.ecosystem.decode_logs(entries, *abis):
            fields = d.event_arguments.items()
            args = {k: v if isinstance(v, str) else int(v) for k, v in fields}
            out.append((int(d.block_number), int(d.log_index), d.event_name, args))
        out.sort(key=lambda x: (x[0], x[1]))
        return [(name, {**args, "block": b}) for b, _, name, args in out]

    def perp_report(
        self, first_block: int, last_block: int, sent: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """The perp's figures: funding paid and received (funding_flows over every PerpBook
        event, unsettled funding at the last block included), fills, settlements and
        liquidation moves, open interest (the chain's, checked against the replay), the
        market makers' perp hedges and the funding by role."""
        events = self.perp_events(last_block)
        block = self.chain.blocks[last_block]
        spot = int(_fields(self.oracle.price(block_id=last_block))[0])
        flows = funding_flows(events, spot, int(block.timestamp))
        book: kp.PerpBook = flows.pop("book")
        oi = int(self.perp_book.open_interest(block_id=last_block))
        if book.open_interest != oi:
            raise kp.PerpError(f"replayed open interest {book.open_interest} != chain {oi}")
        names = Counter(n for n, _ in events)
        during = Counter(n for n, a in events if a["block"] >= first_block)
        roles = {m.address: "market_makers" for m in self.mms}
        roles |= {t.address: "perp_traders" for t in self.perp_traders}
        roles |= {self.lp.address: "liquidity", self.bidder.address: "bidder"}
        by_role: dict[str, float] = defaultdict(float)
        for a, usd in flows["by_account"].items():
            by_role[roles.get(a, "other")] += usd
        # Fills of the run settle at their block's index: the feeds' updates come first.
        fills = [a for n, a in events if n == "PerpFill" and a["block"] >= first_block]
        prices = [int(_fields(self.oracle.price(block_id=a["block"]))[0]) for a in fills]
        at_index = sum(int(a["spot"]) == p for a, p in zip(fills, prices, strict=True))
        hedges = self.perp_hedge_log
        bot_settles = sum(
            tx["kind"] == "settle_perp" and tx.get("final", {}).get("status") == "ok"
            for tx in sent.values()
        )
        return {
            "perp_band": self.perp_band,
            "perp_max_rate": perp_market(self.perp_book.market()).params.max_rate / WAD,
            "funding_paid": flows["paid"],
            "funding_received": flows["received"],
            "funding": {
                **{k: v for k, v in flows.items() if k != "by_account"},
                "by_role": dict(sorted(by_role.items())),
            },
            "perp_open_interest": oi / WAD,
            "perp_fills": names["PerpFill"],
            "perp_fills_during_run": during["PerpFill"],
            "perp_fills_at_block_index": at_index,
            "perp_settlements": during["PerpSettled"],
            "perp_settle_txs": bot_settles,
            "perp_liquidation_moves": during["PerpMoved"],
            "perp_hedges": sum(h["venue"] == "perp" for h in hedges),
            "perp_hedges_left_to_pools": sum(h["venue"] != "perp" for h in hedges),
            "perp_hedge_log": hedges,
        }

    def hedge_record(self, swap: Any, by_block: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
        """One of the bot's hedges: the market maker's delta / gross before and after its
        block (the engine's account_greeks view), the side and the legs it sent."""
        eng = self.engine
        account, block = str(swap.account), int(swap.block_number)
        delta_before = int(eng.account_greeks(account, block_id=block - 1)[0]) / WAD
        delta_after = int(eng.account_greeks(account, block_id=block)[0]) / WAD
        gross = (
            sum(
                abs(unpack_position(int(w))[1])
                for w in eng.packed_positions(account, block_id=block)
            )
            / WAD
        )
        tx = next(
            (
                t
                for t in by_block.get(block, [])
                if t["kind"] == "swap" and str(t["account"]).lower() == account.lower()
            ),
            None,
        )
        legs = len(tx["args"][2]) if tx is not None else 0
        usd = str(self.usd.address).lower()
        return {
            "account": account,
            "block": block,
            "delta_before": delta_before,
            "side": "buy" if str(swap.token_in).lower() == usd else "sell",
            "amount_in": int(swap.amount_in),
            "legs": legs,
            "clipped": bool(tx is not None and "(clipped)" in str(tx.get("reason", ""))),
            "delta_after": delta_after,
            "gross": gross,
            "ratio_after": abs(delta_after) / gross if gross else 0.0,
        }

    def final_table(self, r: dict[str, Any]) -> None:
        rows = [
            ("network", r["network"]),
            ("accounts", r["accounts"]),
            ("blocks of crash + recovery", r["steps"]),
            ("auctions started", r["auctions_started"]),
            ("liquidations (bids filled)", r["liquidations"]),
            ("bad debt (USD)", f"{r['bad_debt']:.2f}"),
            ("insurance fund used (USD)", f"{r['insurance_fund_used']:.2f}"),
            ("hedges", r["hedges"]),
            ("perp fills (during the crash)", f"{r['perp_fills']} ({r['perp_fills_during_run']})"),
            (
                "perp hedges (left to the pools)",
                f"{r['perp_hedges']} ({r['perp_hedges_left_to_pools']})",
            ),
            (
                "perp settlements, liquidation moves",
                f"{r['perp_settlements']}, {r['perp_liquidation_moves']}",
            ),
            ("perp open interest (ETH)", f"{r['perp_open_interest']:.2f}"),
            (
                "funding paid / received (USD)",
                f"{r['funding_paid']:.6f} / {r['funding_received']:.6f}",
            ),
            ("max |delta| / gross after hedge", f"{r['max_abs_delta_after_hedge']:.2e}"),
            ("keeper reaction, max (blocks)", r["keeper_reaction_blocks_max"]),
            ("keeper reaction, median (ms)", r["keeper_reaction_ms_p50"]),
            ("keeper bot transactions", r["keeper"]["transactions"]),
            ("transactions", r["transactions"]),
            ("runtime (s)", r["runtime_s"]),
        ]
        width = max(len(k) for k, _ in rows)
        self.log("")
        for k, v in rows:
            self.log(f"{k:<{width}}  {v}")
        self.log("")
        self.log(f"{'gas per action':<18}{'count':>7}{'median':>12}{'max':>12}")
        for kind, g in r["gas"].items():
            self.log(f"{kind:<18}{g['count']:>7}{g['median']:>12,}{g['max']:>12,}")
