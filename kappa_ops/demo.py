"""The crash demo on a local node (ape I/O): deploy, seed a market, crash it, keep it safe.

Actors (ape test accounts): the keeper (0: deployer, feeds, vol feeder, risk admin, hedging
operator of the market makers, auction starter), two market makers (1, 2), the liquidation
bidder (3) and an arbitrageur (4) who keeps the pools at the oracle price. Directional traders
are key pairs that only sign orders (EIP-712); their collateral is deposited for them with
`deposit_for`, and the market makers fill their orders as takers.

Each block of the crash: the keeper moves the three mock feeds and the vol surface, the
arbitrageur re-prices the pools, then the keeper reads every account in one batched call,
computes every account's margin with keeper.margin, starts auctions on accounts with H_MM < 0
(passing the witness) and the bidder bids on them, and the market makers' delta is brought back
inside its band through MarginEngine.swap split across the pools (keeper.hedging, keeper.routing).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from eth_account import Account
from eth_utils import keccak

from kappa_ops.chain import ChainReader, Snapshot
from kappa_ops.config import ROOT, load_config
from kappa_ops.deployer import DEPLOYMENTS_DIR, Deployment, current_network, deploy
from kappa_ops.scenario import (
    ScenarioSettings,
    arbitrage_trade,
    expiries,
    price_path,
    trader_orders,
    vol_path,
)
from kappa_ops.tx import Sender, TxError
from keeper import margin as km
from keeper.black76 import black76
from keeper.hedging import delta_ratio, needs_hedge, plan_hedge
from keeper.liquidation import plan_liquidations, price_limit
from keeper.orders import as_tuple
from keeper.orders import sign as sign_order
from keeper.series import series_id

WAD = 10**18
REPORTS = ROOT / "reports"
# What each market maker lets the keeper lose to hedge swaps per day (fees and impact), USD:
# 1% of its deposit.
MM_HEDGE_BUDGET_USD = 30_000


@dataclass
class Trader:
    key: bytes
    address: str

    @classmethod
    def derive(cls, i: int) -> Trader:
        acct = Account.from_key(keccak(text=f"kappa demo trader {i}"))
        return cls(bytes(acct.key), str(acct.address))


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
    ) -> None:
        from ape import accounts, chain

        self.s = settings
        self.log = log
        self.chain = chain
        self.records_dir = records_dir
        self.report_dir = report_dir
        self.charts = charts
        self.stats = Stats()
        self.sender = Sender()
        t = accounts.test_accounts
        self.keeper, self.mms, self.bidder, self.arb = t[0], [t[1], t[2]], t[3], t[4]
        self.traders = [Trader.derive(i) for i in range(settings.traders)]

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
        return sign_order(trader.key, int(self.chain.chain_id), str(self.engine.address), order)

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
        self.usd, self.weth = d["usd"], d["weth"]
        self.liquidator = d.contracts.get("liquidator")
        self.pools = [d[p.name] for p in config.pools]
        self.fees = [p.fee_bps for p in config.pools]
        self.feeds = [d[f"feed_{x}"] for x in config.mocks.feed_decimals]  # type: ignore[union-attr]
        self.feed_decimals = list(config.mocks.feed_decimals)  # type: ignore[union-attr]
        self.usd_scale = 10**config.mocks.cash.decimals  # type: ignore[union-attr]
        self.reader = ChainReader(self.engine, self.oracle, self.vol, self.liquidator)
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
            self.send("set_operator", self.engine.set_operator, k.address, True, sender=mm)
            # The keeper hedges for the market makers: what it may lose to swaps per day.
            self.send(
                "set_hedge_budget",
                self.engine.set_hedge_budget,
                MM_HEDGE_BUDGET_USD * WAD,
                sender=mm,
            )
        self.fund(self.bidder.address, 20_000_000)
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

    # -- each block ------------------------------------------------------------------------

    @property
    def accounts(self) -> list[str]:
        return [
            *(m.address for m in self.mms),
            self.bidder.address,
            *(t.address for t in self.traders),
        ]

    def move_market(self, spot: float, atm: np.ndarray, skew: float) -> None:
        k = self.keeper
        spread = self.s.feed_spread
        moves = (1 - spread, 1.0, 1 + spread)
        txs: list[tuple[str, Any, tuple[Any, ...], Any]] = [
            ("feed_update", feed.set_answer, (round(spot * m * 10**dec),), k)
            for feed, dec, m in zip(self.feeds, self.feed_decimals, moves, strict=False)
        ]
        txs += [
            ("vol_update", self.vol.update, (e, int(a * WAD), int(skew * WAD)), k)
            for e, a in zip(self.expiries, atm, strict=True)
        ]
        self.send_batch(txs)

    def reserves(self) -> list[tuple[int, int]]:
        """(underlying, cash) reserves per pool (token0 is the underlying)."""
        out = self.reader.batch([(p.get_reserves, ()) for p in self.pools])
        return [(int(r[0]), int(r[1])) for r in out]

    def arbitrage(self, spot: float) -> None:
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
        self.send_batch(txs)

    def mm_delta(self, snap: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(net delta, options-only delta, gross option size) of the market makers."""
        idx = [snap.index(m.address) for m in self.mms]
        sub = snap.portfolios.take(idx)
        greeks = km.account_greeks(sub, snap.market)
        gross = np.abs(sub.size).sum(axis=1)
        return greeks.delta, greeks.delta - sub.underlying, gross

    def hedge(self, snap: Snapshot, record: dict[str, Any]) -> None:
        net, _, gross = self.mm_delta(snap)
        due = needs_hedge(net, gross, self.s.band)
        if not np.any(due):
            return
        reserves = self.reserves()
        done: list[dict[str, Any]] = []
        for i in np.flatnonzero(due):
            mm = self.mms[i]
            held = snap.underlying_wad[snap.index(mm.address)] / WAD
            order = plan_hedge(
                float(net[i]),
                held,
                [r[0] for r in reserves],
                [r[1] for r in reserves],
                self.fees,
            )
            if order is None:
                continue
            token_in = self.usd if order.buy_underlying else self.weth
            legs = [int(x) for x in order.legs]
            pools = [p.address for p, leg in zip(self.pools, legs, strict=True) if leg > 0]
            legs = [leg for leg in legs if leg > 0]
            self.send(
                "hedge_swap",
                self.engine.swap,
                mm.address,
                token_in.address,
                pools,
                legs,
                order.min_out,
                self.now() + 600,
                sender=self.keeper,
            )
            reserves = self.reserves()
            done.append(
                {
                    "account": mm.address,
                    "delta_before": float(net[i]),
                    "side": "buy" if order.buy_underlying else "sell",
                    "amount_in": order.amount_in,
                    "legs": len(legs),
                    "clipped": order.clipped,
                }
            )
        if not done:
            return
        after = self.reader.snapshot([h["account"] for h in done], self.now())
        d_after, _, g_after = self.mm_delta_single(after)
        for h, d, g in zip(done, d_after, g_after, strict=True):
            h.update(delta_after=float(d), gross=float(g), ratio_after=float(delta_ratio(d, g)))
        record["hedges"].extend(done)

    def mm_delta_single(self, snap: Snapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        greeks = km.account_greeks(snap.portfolios, snap.market)
        gross = np.abs(snap.portfolios.size).sum(axis=1)
        return greeks.delta, greeks.delta - snap.portfolios.underlying, gross

    def liquidate(self, snap: Snapshot, result: km.MarginResult, record: dict[str, Any]) -> None:
        """Start auctions on accounts with H_MM < 0 (with the witness), bid on them, end the
        auctions of accounts that are healthy again."""
        if self.liquidator is None:
            return
        protected = np.array([a == self.bidder.address for a in snap.addresses])
        plan = plan_liquidations(
            result.health_mm,
            result.witness_mm,
            snap.auction_open,
            protected,
            margin=1e-3,
            health_im=result.health_im,
        )
        liq, k = self.liquidator, self.keeper
        self.send_batch(
            [
                ("start_auction", liq.start_auction, (snap.addresses[i], int(w)), k)
                for i, w in zip(plan.start, plan.witnesses, strict=True)
            ]
        )
        record["auctions_started"] += len(plan.start)
        fund_share = int(liq.fund_share()) / WAD
        for i in plan.bid:
            account = snap.addresses[i]
            discount, fund_before = (
                int(x)
                for x in self.reader.batch([(liq.discount, (account,)), (liq.insurance_fund, ())])
            )
            limit = float(price_limit(result.mtm[i], 1.0, discount / WAD, fund_share))
            try:
                self.send("bid", liq.bid, account, WAD, int(limit * WAD), sender=self.bidder)
            except TxError as exc:
                self.log(f"  bid on {account} failed: {exc}")
                record["bids_failed"] += 1
                continue
            fund_after = int(liq.insurance_fund())
            record["insurance_fund_used"] += max(fund_before - fund_after, 0) / WAD
            record["liquidations"] += 1
        self.send_batch(
            [("end_auction", liq.end_auction, (snap.addresses[i],), k) for i in plan.end]
        )

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self.setup()
        s = self.s
        accounts = self.accounts
        snap = self.reader.snapshot(accounts, self.now())
        record0: dict[str, Any] = {"hedges": []}
        self.hedge(snap, record0)  # the market makers' initial hedge
        snap = self.reader.snapshot(accounts, self.now())
        base_underlying = np.array(
            [snap.underlying_wad[snap.index(m.address)] / WAD for m in self.mms]
        )
        self.log(
            f"{len(accounts)} accounts; market makers hedged: "
            + ", ".join(f"{d:+.2f}" for d in self.mm_delta(snap)[0])
            + " ETH net delta"
        )
        prices = price_path(s)
        atm, skew = vol_path(s)
        steps: list[dict[str, Any]] = []
        totals = {
            "liquidations": 0,
            "auctions_started": 0,
            "insurance_fund_used": 0.0,
            "bids_failed": 0,
        }
        hedges: list[dict[str, Any]] = list(record0["hedges"])
        for t in range(s.steps):
            rec: dict[str, Any] = {
                "step": t + 1,
                "liquidations": 0,
                "auctions_started": 0,
                "insurance_fund_used": 0.0,
                "hedges": [],
                "bids_failed": 0,
            }
            self.move_market(float(prices[t]), atm[t], float(skew[t]))
            self.arbitrage(float(prices[t]))
            snap = self.reader.snapshot(accounts, self.now())
            result = km.evaluate(snap.portfolios, snap.market, self.params)
            self.liquidate(snap, result, rec)
            net_before, opt, gross = self.mm_delta(snap)
            self.hedge(snap, rec)
            after = self.reader.snapshot([m.address for m in self.mms], self.now())
            net_after, _, _ = self.mm_delta_single(after)
            h_mm, h_im = result.health_mm, result.health_im
            rec.update(
                {
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
            )
            for key in totals:
                totals[key] += rec[key]
            hedges.extend(rec["hedges"])
            steps.append(rec)
            self.log(
                f"block {t + 1:>3}/{s.steps}  ETH {snap.market.spot:8.2f}  vol {atm[t][0]:.2f}  "
                f"liquidatable {rec['liquidatable']:>2}  below IM {rec['below_im']:>2}  "
                f"auctions {rec['auctions_started']}  bids {rec['liquidations']}  "
                f"hedges {len(rec['hedges'])}  MM delta " + " ".join(f"{d:+.3f}" for d in net_after)
            )
        elapsed = time.monotonic() - started
        report = self.report(steps, hedges, totals, elapsed)
        return report

    def report(
        self,
        steps: list[dict[str, Any]],
        hedges: list[dict[str, Any]],
        totals: dict[str, Any],
        elapsed: float,
    ) -> dict[str, Any]:
        liq = self.liquidator
        bad_debt = int(liq.bad_debt()) / WAD if liq is not None else 0.0
        fund = int(liq.insurance_fund()) / WAD if liq is not None else 0.0
        worst = max((h["ratio_after"] for h in hedges), default=0.0)
        report = {
            "network": self.dep.network,
            "chain_id": self.dep.chain_id,
            "accounts": len(self.accounts),
            "steps": len(steps),
            "liquidations": totals["liquidations"],
            "auctions_started": totals["auctions_started"],
            "bad_debt": bad_debt,
            "insurance_fund_used": totals["insurance_fund_used"],
            "insurance_fund_end": fund,
            "bids_failed": totals["bids_failed"],
            "hedges": len(hedges),
            "max_abs_delta_after_hedge": worst,
            "gas": self.stats.summary(),
            "transactions": self.stats.tx,
            "runtime_s": round(elapsed, 1),
            "contracts": {n: self.dep.address(n) for n in self.dep.contracts},
            "settings": {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in self.s.__dict__.items()
            },
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
            ("max |delta| / gross after hedge", f"{r['max_abs_delta_after_hedge']:.2e}"),
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
