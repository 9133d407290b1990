"""The keeper's per-block loop: mirror, market, evaluation, plan, transactions, checkpoint.

`Keeper` wires the pure parts (mirror, planner, tx manager) to the chain readers and the
signer. The Silverback handlers in keeper/runtime/bot.py call `catch_up()` at startup and
`on_block()` for every new block; both are idempotent and resume from the mirror's last
processed block, so a missed or repeated block, a restart or an RPC error only delays work:

1. reconcile in-flight transactions with the node (receipts, nonces) and replace stuck ones;
2. reorg check: the hash of the last processed block must be unchanged, else the mirror rolls
   back to the newest of the last `reorg_snapshots` checkpoints (kept in memory) still on the
   canonical chain, or is rebuilt from the deployment block when none is;
3. read the engine and liquidator logs up to `head - confirmations` (chunks while behind) and
   apply them; a chunk is fetched completely before any of it is applied, so a failed read
   applies nothing;
4. read the market; re-evaluate every account when a market input changed (spot, confidence,
   a vol entry, a settlement, the share price, a listing, parameters), when `reprice_seconds`
   passed or an expiry was crossed; else only the accounts an event touched;
5. plan (keeper.runtime.planner), simulate each action with eth_call from the signer, send the
   ones that simulate and pay (or log them in dry run);
   the vol feeder (keeper.runtime.volfeed) adds VolOracle updates from its source last;
6. every `drift.every_blocks` blocks compare a rotating sample of accounts with the contracts'
   views at the processed block; a mismatch is logged, counted and repaired from the chain;
7. write the checkpoint (every `checkpoint_blocks` blocks) atomically.

Every action and every fault is one JSON line on stdout, flushed at once. With `health:` set,
GET /health answers the bot's state (keeper.runtime.health).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from keeper import margin as km
from keeper import perp as kp
from keeper.hedging import needs_hedge
from keeper.runtime import volfeed
from keeper.runtime.chain import (
    AccountReader,
    Backoff,
    DeploymentInfo,
    EventReader,
    MarketReader,
    settlement_hints,
)
from keeper.runtime.health import HealthState, health_report, rpc_head, serve
from keeper.runtime.mirror import WAD, Mirror, MirrorError, repair_account
from keeper.runtime.perp_quotes import live, load_quotes
from keeper.runtime.planner import (
    Action,
    BlockInputs,
    PerpVenue,
    Pools,
    bid_profit,
    plan_block,
    plan_hedges,
)
from keeper.runtime.settings import KeeperSettings
from keeper.runtime.sharding import Takeover, key_owner, own_books, row_owner
from keeper.runtime.txmanager import (
    PendingTx,
    Sender,
    TxManager,
    TxPolicy,
    initial_fees,
)

# Gas estimates per action for the profit check (the Liquidator's measured figures, rounded up;
# bench/results/gas.json).
GAS_ESTIMATE = {
    "start_auction": 400_000,
    "bid": 2_500_000,
    "end_auction": 400_000,
    "settle_expiry": 200_000,
    "settle_positions": 600_000,
    "settle_perp": 150_000,
    "swap": 1_500_000,
    "fill": 600_000,
    "vol_update": 120_000,
}


class ChainChangedError(RuntimeError):
    """The chain reorganized while a block's data was being read."""


def log_line(event: str, **fields: Any) -> None:
    """One JSON line on stdout, flushed (structured, unbuffered logs)."""
    record = {"ts": round(time.time(), 3), "event": event, **fields}
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


class Metrics:
    """Counters and gauges; mirrored to Prometheus when a port is configured."""

    def __init__(self, port: int | None) -> None:
        self.counters: Counter[str] = Counter()
        self.gauges: dict[str, float] = {}
        self._prom: dict[str, Any] = {}
        if port is not None:
            from prometheus_client import Counter as PCounter
            from prometheus_client import Gauge, start_http_server

            start_http_server(port)
            self._pc, self._pg = PCounter, Gauge

    def inc(self, name: str, n: int = 1) -> None:
        self.counters[name] += n
        if hasattr(self, "_pc") and n:
            metric = self._prom.get(name)
            if metric is None:
                metric = self._prom[name] = self._pc(f"kappa_keeper_{name}", name)
            metric.inc(n)

    def set(self, name: str, value: float) -> None:
        self.gauges[name] = value
        if hasattr(self, "_pg"):
            metric = self._prom.get(name)
            if metric is None:
                metric = self._prom[name] = self._pg(f"kappa_keeper_{name}", name)
            metric.set(value)


class Keeper:
    """See the module."""

    def __init__(
        self,
        settings: KeeperSettings,
        contracts: dict[str, Any],
        provider: Any,
        signer: Any | None,
        checkpoint: Path,
        start_block: int,
        chain_id: int,
        log: Callable[..., None] = log_line,
        pools: list[tuple[Any, int]] | None = None,
        root: Path | None = None,
    ) -> None:
        self.s = settings
        self.provider = provider
        self.log = log
        self.engine, self.liquidator = contracts["engine"], contracts["liquidator"]
        self.oracle = contracts["oracle"]
        self.vol_oracle = contracts["vol_oracle"]
        self.contracts = {
            "engine": self.engine,
            "liquidator": self.liquidator,
            "vol_oracle": self.vol_oracle,
        }
        self.root = root if root is not None else Path.cwd()
        self.chain_id = chain_id
        self.start_block = start_block
        self.checkpoint_file = checkpoint
        # The perp book, when the deployment has one: its events and positions are mirrored.
        self.perp_book = contracts.get("perp_book")
        self.events = EventReader(provider, self.engine, self.liquidator, self.perp_book)
        self.market_reader = MarketReader(
            self.engine, contracts["oracle"], contracts["vol_oracle"], self.liquidator
        )
        self.accounts = AccountReader(self.engine, self.liquidator, self.perp_book)
        self.metrics = Metrics(settings.metrics_port)
        self.dry_run = settings.dry_run or signer is None
        self.sender = Sender(signer, provider) if signer is not None else None
        policy = TxPolicy.from_settings(settings)
        self.txm = TxManager(replace(policy, dry_run=self.dry_run))
        self.lock = threading.Lock()
        self.mirror = self._load_mirror()
        # (last block, its hash, the checkpoint's JSON) of the last `reorg_snapshots` checkpoints:
        # a reorg rolls back to the newest one still on the canonical chain.
        self._snapshots: deque[tuple[int, str, str]] = deque(maxlen=settings.reorg_snapshots)
        # Hedging venues: (pool, fee bps, the underlying is token0).
        underlying = str(self.engine.underlying_token()).lower()
        self.pools = [(p, fee, str(p.token0()).lower() == underlying) for p, fee in pools or []]
        self._params_epoch = self.mirror.params_epoch
        self._market_key: tuple[Any, ...] | None = None
        self._market_epoch = -1
        self._last_full = 0
        self._drift_cursor = 0
        self._blocks = 0
        self._rows_evaluated = 0
        self._last_step = -1
        self._last_report: dict[str, float] = {}
        self._max_fee = self.txm.policy.max_fee_wei
        self.backoff = Backoff(
            settings.rpc.backoff_initial_seconds, settings.rpc.backoff_max_seconds
        )
        sh = settings.shard
        self.takeover = Takeover(sh.index, sh.count, sh.takeover_blocks)
        # Workers of one distributed bot evaluate their own books only (sharding.py).
        self._own_shard_only = sh.count > 1 and sh.takeover_blocks is None
        self._lag = 0
        self._vol_source_error: str | None = None
        roles = [name for name, on in settings.roles.model_dump().items() if on]
        self.health = HealthState(roles=roles, confirmations=settings.confirmations)
        signer_address = self.sender.address if self.sender is not None else None
        self.health.extra = {"dry_run": self.dry_run, "signer": signer_address}
        self._health_server = None
        if settings.health is not None:
            h = settings.health
            self._health_server = serve(h.host, h.port, self.health_report)

    # -- mirror and checkpoint ----------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "engine": str(self.engine.address),
            "liquidator": str(self.liquidator.address),
        }

    def _fresh_mirror(self) -> Mirror:
        e = self.engine
        width = int(e.risk_params()[4])
        return Mirror(
            str(e.cash_token()),
            str(e.underlying_token()),
            int(e.cash_scale()),
            int(e.underlying_scale()),
            width=width,
            shard_size=self.s.shard_size,
        )

    def _load_mirror(self) -> Mirror:
        path = self.checkpoint_file
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                if data.get("meta", {}) != self._meta():
                    self.log("checkpoint_ignored", path=str(path), reason="another deployment")
                else:
                    m = Mirror.from_checkpoint(data, shard_size=self.s.shard_size)
                    self.log(
                        "checkpoint_loaded",
                        path=str(path),
                        block=m.last_block,
                        accounts=m.n_accounts,
                    )
                    return m
            except (json.JSONDecodeError, MirrorError) as exc:
                self.log("checkpoint_ignored", path=str(path), reason=str(exc))
        return self._fresh_mirror()

    def write_checkpoint(self) -> None:
        path = self.checkpoint_file
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.mirror.to_checkpoint(self._meta())
        text = json.dumps(data)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        m = self.mirror
        if self._snapshots.maxlen and m.last_block_hash is not None:
            # Snapshots stay in block order: a rewrite of the same block replaces its own.
            while self._snapshots and self._snapshots[-1][0] >= m.last_block:
                self._snapshots.pop()
            self._snapshots.append((m.last_block, m.last_block_hash, text))

    # -- reading -----------------------------------------------------------------------------

    def _apply_range(self, start: int, end: int) -> int:
        """Apply every event in [start, end] in chunks; returns the number applied.

        The hash of a chunk's last block is read before and after its logs: logs read from a
        branch the node abandoned during the read must not be recorded under the new branch's
        hash (the reorg check would then never see them)."""
        applied = 0
        for lo, hi in self.events.chunks(start, end, self.s.backfill_chunk):
            block_hash = self.events.block_hash(hi)
            events = self.events.logs(lo, hi)
            if self.events.block_hash(hi) != block_hash:
                raise ChainChangedError(f"block {hi} changed while its logs were read")
            # Pure from here on: a failure above leaves the mirror untouched.
            self.mirror.apply_many(events)
            self.mirror.last_block, self.mirror.last_block_hash = hi, block_hash
            applied += len(events)
        self.metrics.inc("events", applied)
        return applied

    def _reorganized(self) -> bool:
        """The last processed block is gone or has another hash now (False when the node does
        not answer: that is an error, not a reorg)."""
        from web3.exceptions import BlockNotFound

        m = self.mirror
        if m.last_block < 0 or m.last_block_hash is None:
            return False
        try:
            return self.events.block_hash(m.last_block) != m.last_block_hash
        except BlockNotFound:
            return True
        except Exception:
            return False

    def _check_reorg(self) -> None:
        m = self.mirror
        if m.last_block < 0 or m.last_block_hash is None:
            return
        head = self.events.head()
        current = self.events.block_hash(m.last_block) if m.last_block <= head else None
        if current != m.last_block_hash:
            restored = self._canonical_snapshot(head)
            self.log(
                "reorg",
                block=m.last_block,
                stored=m.last_block_hash,
                now=current,
                rolled_back_to=None if restored is None else restored.last_block,
                action="rebuild from the deployment block"
                if restored is None
                else "roll back to the newest canonical checkpoint, replay from there",
            )
            self.metrics.inc("reorgs")
            self.mirror = restored if restored is not None else self._fresh_mirror()
            self._market_key = None

    def _canonical_snapshot(self, head: int) -> Mirror | None:
        """The newest in-memory checkpoint whose block is still on the canonical chain (its
        hash unchanged: every block below it is then canonical too), as a mirror; the newer,
        abandoned ones are dropped. None when none is left."""
        from web3.exceptions import BlockNotFound

        while self._snapshots:
            block, block_hash, text = self._snapshots[-1]
            try:
                canonical = block <= head and self.events.block_hash(block) == block_hash
            except BlockNotFound:
                canonical = False
            if canonical:
                return Mirror.from_checkpoint(json.loads(text), shard_size=self.s.shard_size)
            self._snapshots.pop()
        return None

    def catch_up(self) -> None:
        """Backfill from the checkpoint (or the deployment block) to head - confirmations."""
        with self.lock:
            started = time.perf_counter()
            self._check_reorg()
            target = self.events.head() - self.s.confirmations
            first = max(self.mirror.last_block + 1, self.start_block)
            n = self._apply_range(first, target) if target >= first else 0
            elapsed = time.perf_counter() - started
            self.log(
                "backfill",
                start=first,
                end=target,
                events=n,
                accounts=self.mirror.n_accounts,
                seconds=round(elapsed, 3),
            )
            self.write_checkpoint()
            self.health.started = True
            self.health.last_block = self.mirror.last_block
            self.health.last_progress = time.time()

    def health_report(self) -> tuple[int, dict[str, Any]]:
        """The /health answer: the node's head now against the last processed block."""
        uri = getattr(self.provider, "http_uri", None)
        head = rpc_head(uri) if uri else None
        if not uri:
            try:
                head = self.events.head()
            except Exception:
                head = None
        h = self.health
        h.extra["accounts"] = self.mirror.n_accounts
        h.extra["open_auctions"] = int(self.metrics.gauges.get("open_auctions", 0))
        h.extra["liquidatable"] = int(self.metrics.gauges.get("liquidatable", 0))
        assert self.s.health is not None
        return health_report(h, head, time.time(), self.s.health.max_lag_blocks)

    # -- the block --------------------------------------------------------------------------

    def on_block(self, number: int | None = None) -> dict[str, float]:
        """Process everything up to the head; returns this block's metrics."""
        with self.lock:
            started = time.perf_counter()
            wall = time.time()
            if not self.backoff.ready(wall):  # an outage: wait for the retry time
                return {"errors": float(self.metrics.counters["errors"]), "backoff": 1.0}
            try:
                report = self._step(started)
            except Exception as exc:  # RPC loss, node restart: log, count, back off, retry
                if isinstance(exc, ChainChangedError) or self._reorganized():
                    # A reorg under this block's reads (a block read by number vanished or
                    # changed): nothing failed, the next block's reorg check rebuilds.
                    self.metrics.inc("reorg_during_block")
                    self.log(
                        "reorg_during_block",
                        block=number,
                        error=type(exc).__name__,
                        message=" ".join(str(exc).split())[:300],
                        action="the next block rebuilds from the reorg check",
                    )
                    return {"errors": float(self.metrics.counters["errors"])}
                self.metrics.inc("errors")
                self.health.errors += 1
                self.health.last_error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
                delay = self.backoff.failure(wall)
                self.metrics.set("rpc_up", 0.0)
                self.log(
                    "error",
                    where="on_block",
                    block=number,
                    error=type(exc).__name__,
                    message=" ".join(str(exc).split())[:300],
                    retry_in=round(delay, 3),
                )
                return {"errors": float(self.metrics.counters["errors"])}
            outage = self.backoff.success(time.time())
            self.metrics.set("rpc_up", 1.0)
            if outage is not None:
                self.metrics.inc("recoveries")
                self.log(
                    "recovered",
                    outage_seconds=round(outage, 3),
                    lag_blocks=self._lag,
                    caught_up_to=self.mirror.last_block,
                )
            self.health.last_error = None
            self.health.last_block = self.mirror.last_block
            self.health.last_progress = time.time()
            return report

    def _step(self, started: float) -> dict[str, float]:
        self._reconcile()
        self._check_reorg()
        self._max_fee = self.txm.policy.max_fee_wei
        if self.sender is not None:
            fees = initial_fees(*self.sender.fee_inputs(), self.txm.policy)
            if fees is not None:
                self._max_fee = fees[0]
        head = self.events.head()
        target = head - self.s.confirmations
        m = self.mirror
        if target == self._last_step and self._last_report:
            return self._last_report  # a repeated delivery of a block already processed
        self._lag = max(target - m.last_block, 0)  # blocks behind when this step began
        if target > m.last_block:
            self._apply_range(max(m.last_block + 1, self.start_block), target)
        if m.params_epoch != self._params_epoch:
            self.market_reader.refresh_params()
            self._params_epoch = m.params_epoch
        now = self.events.timestamp(m.last_block_hash or self.events.block_hash(m.last_block))
        market, key = self.market_reader.market(m.expiries, m.settlement, now)
        crossed = any(self._last_full < e <= now for e in m.expiries)
        full = (
            key != self._market_key
            or m.market_epoch != self._market_epoch
            or now - self._last_full >= self.s.reprice_seconds
            or crossed
        )
        touched = m.take_touched()
        if self._own_shard_only:  # another worker's rows are its business (sharding.py)
            sh = self.s.shard
            touched = touched[row_owner(touched, self.s.shard_size, sh.count) == sh.index]
        params = self.market_reader.params
        t0 = time.perf_counter()
        greeks = self.s.roles.monitor and self.s.roles.monitor_greeks
        if full:
            books = self._own_books() if self._own_shard_only else None
            rows = m.evaluate(market, params, greeks=greeks, books=books)
            self._market_key, self._market_epoch, self._last_full = key, m.market_epoch, now
        else:
            rows = m.evaluate(market, params, touched, greeks=greeks)
        self._rows_evaluated = int(rows.size)
        eval_ms = (time.perf_counter() - t0) * 1e3
        actions = self._plan(now, market.spot)
        actions += self._plan_hedges(market, now)
        actions += self._plan_vol(now)
        actions = self._mine(actions, target)
        for action in actions:
            self._execute(action, market.spot, target)
        self._blocks += 1
        if self.s.drift.sample and self._blocks % self.s.drift.every_blocks == 0:
            self._drift_check(market, params)
        if self._blocks % self.s.checkpoint_blocks == 0:
            self.write_checkpoint()
        self._last_step = target
        self._last_report = self._report(target, full, eval_ms, started, len(actions))
        return self._last_report

    def _report(
        self, block: int, full: bool, eval_ms: float, started: float, n_actions: int
    ) -> dict[str, float]:
        m = self.mirror
        ev = m.evaluation
        n = m.n_accounts
        h_mm, h_im = ev.health_mm[:n], ev.health_im[:n]
        liquidatable = int(np.sum(h_mm < 0))
        below_im = int(np.sum((h_im < 0) & (h_mm >= 0)))
        open_auctions = int(np.sum(m.auction_start > 0))
        block_ms = (time.perf_counter() - started) * 1e3
        out = {
            "block": float(block),
            "accounts": float(n),
            "evaluated": float(self._rows_evaluated),
            "liquidatable": float(liquidatable),
            "below_im": float(below_im),
            "open_auctions": float(open_auctions),
            "actions": float(n_actions),
            "eval_ms": round(eval_ms, 3),
            "block_ms": round(block_ms, 3),
            "lag_blocks": float(self._lag),
            "shard_accounts": float(self._shard_accounts(n)),
        }
        for k, v in out.items():
            self.metrics.set(k, v)
        if self.s.roles.monitor:
            finite = h_mm[np.isfinite(h_mm)]
            delta = ev.delta[:n]
            gross_delta = float(np.nansum(np.abs(delta))) if n else 0.0
            out["gross_delta"] = round(gross_delta, 6)
            self.metrics.set("gross_delta", gross_delta)
            self.log(
                "risk",
                block=block,
                full=full,
                accounts=n,
                evaluated=self._rows_evaluated,
                liquidatable=liquidatable,
                below_im=below_im,
                open_auctions=open_auctions,
                min_health_mm=float(finite.min()) if finite.size else None,
                eval_ms=round(eval_ms, 2),
                block_ms=round(block_ms, 2),
                lag_blocks=self._lag,
            )
        return out

    # -- actions ----------------------------------------------------------------------------

    def _shard_accounts(self, n: int) -> int:
        """How many of the n mirrored accounts this keeper's shard owns."""
        sh = self.s.shard
        if sh.count == 1:
            return n
        owners = row_owner(np.arange(n, dtype=np.int64), self.s.shard_size, sh.count)
        return int(np.sum(owners == sh.index))

    def _own_books(self) -> list[int]:
        sh = self.s.shard
        n_books = -(-self.mirror.n_accounts // self.s.shard_size)
        return own_books(n_books, sh.index, sh.count)

    def _mine(self, actions: list[Action], block: int) -> list[Action]:
        """The actions this keeper's shard may send now (keeper/runtime/sharding.py)."""
        sh = self.s.shard
        if sh.count == 1 or not actions:
            return actions
        index = self.mirror.index
        owners = []
        for a in actions:
            row = index.get(a.account.lower()) if a.account is not None else None
            if row is None:
                owners.append(key_owner(a.key, sh.count))
            else:
                owners.append(int(row_owner(np.array([row]), self.s.shard_size, sh.count)[0]))
        allowed, taken = self.takeover.admit([a.key for a in actions], owners, block)
        for key in taken:
            self.metrics.inc("takeovers")
            self.log("takeover", kind=key[0], subject=key[1], block=block, shard=sh.index)
        return [a for a, ok in zip(actions, allowed, strict=True) if ok]

    def _protected(self) -> list[int]:
        rows = []
        for addr in (self.sender.address if self.sender else None, str(self.liquidator.address)):
            if addr is not None and addr.lower() in self.mirror.index:
                rows.append(self.mirror.index[addr.lower()])
        return rows

    def _gas_usd(self, kind: str, spot: float) -> float:
        """Gas of an action in USD at this block's max fee (the fee cap while the base fee is
        above it), with the underlying as the gas token's price (WETH on our L2s)."""
        return GAS_ESTIMATE[kind] * self._max_fee / 1e18 * spot

    def _plan(self, now: int, spot: float) -> list[Action]:
        m = self.mirror
        ev = m.evaluation
        settled = sorted(m.settlement)
        holders = m.holders_of(settled) if settled else None
        x = BlockInputs(
            addresses=m.addresses,
            mtm=ev.mtm,
            health_im=ev.health_im,
            health_mm=ev.health_mm,
            witness_mm=ev.witness_mm,
            auction_start=m.auction_start,
            now=now,
            terms=self.market_reader.terms,
            protected=self._protected(),
            in_flight=self.txm.in_flight(),
            listed_expiries=m.expiries,
            settlement=m.settlement,
            holders_of_settled=holders,
            gas_usd=self._gas_usd("bid", spot),
            perp_owed=m.perp_owed_f[: m.n_accounts],
        )
        return plan_block(x, self.s)

    def _plan_hedges(self, market: Any, now: int) -> list[Action]:
        if not (self.s.roles.hedger and self.sender is not None and self.pools):
            return []
        m = self.mirror
        rows = m.operated_by(self.sender.address)
        if not rows:
            return []
        pf = m.portfolios(rows)
        greeks = km.account_greeks(pf, market)
        n = m.n_accounts
        net, gross, under = np.full(n, np.nan), np.zeros(n), np.zeros(n)
        net[rows] = greeks.delta
        gross[rows] = np.abs(pf.size).sum(axis=1)
        under[rows] = pf.underlying
        if not needs_hedge(net[rows], gross[rows], self.s.hedge.band).any():
            return []
        reserves = self.market_reader.reader.batch([(p.get_reserves, ()) for p, _, _ in self.pools])
        ru, rc = [], []
        for (_, _, underlying_first), r in zip(self.pools, reserves, strict=True):
            r0, r1 = int(r[0]), int(r[1])
            ru.append(r0 if underlying_first else r1)
            rc.append(r1 if underlying_first else r0)
        venues = Pools(
            [str(p.address) for p, _, _ in self.pools], [f for _, f, _ in self.pools], ru, rc
        )
        perp = self._perp_venue(float(market.spot), now, {m.addresses[i].lower() for i in rows})
        return plan_hedges(
            m.addresses,
            rows,
            net,
            gross,
            under,
            venues,
            str(self.engine.cash_token()),
            str(self.engine.underlying_token()),
            now,
            self.s,
            self.txm.in_flight(),
            perp=perp,
        )

    def _perp_venue(self, spot: float, now: int, hedged: set[str]) -> PerpVenue | None:
        """The perp as a hedge venue, when the deployment has one and a quotes file is set:
        the live quotes not made by a hedged account, the funding rate and the band."""
        path = self.s.hedge.perp_quotes
        if path is None or self.perp_book is None:
            return None
        quotes = live(load_quotes(self.root / path), now, hedged)
        if not quotes:
            return None
        params = self.perp_book.market()
        band = kp.PerpParams.unpack(int(params[4])).band / WAD
        rate = int(self.perp_book.funding_rate()) / WAD
        return PerpVenue(quotes, spot, rate, band)

    def _execute(self, action: Action, spot: float, block: int) -> None:
        contract = self.contracts[action.target]
        method = getattr(contract, action.function)
        if action.kind == "settle_expiry":
            # The settlement price is fixed by each source's first round at or after the
            # expiry: the call names those rounds (read now, checked by the aggregator).
            expiry = int(action.args[0])
            action = replace(action, args=(expiry, settlement_hints(self.oracle, expiry)))
        base: dict[str, Any] = {
            "kind": action.kind,
            "account": action.account,
            "args": list(action.args),
            "block": block,
            "reason": action.reason,
        }
        if self.sender is not None:
            result, revert = self.sender.simulate(method, action.args)
        else:
            result, revert = None, None
        if revert is not None:
            self.metrics.inc(f"skipped_{action.kind}")
            self.log("skip", **base, why=f"simulation reverted: {revert}")
            return
        if action.kind == "bid" and result is not None:
            taken, outlay = (int(v) for v in result)
            row = self.mirror.index[action.account.lower()]  # type: ignore[union-attr]
            mtm = float(self.mirror.evaluation.mtm[row])
            profit = bid_profit(mtm, taken, outlay, self._gas_usd("bid", spot))
            base.update(taken=taken, outlay=outlay, profit_usd=round(profit, 6))
            if profit < self.s.liquidation.min_profit_usd:
                self.metrics.inc("skipped_bid")
                self.log("skip", **base, why="not profitable after gas")
                return
        verdict, refusal = self.txm.decide(action.key, self._max_fee, int(time.time()))
        if verdict == "refuse":
            self.metrics.inc("refused")
            self.log("skip", **base, why=refusal)
            return
        if verdict == "dry_run":
            self.metrics.inc(f"dry_{action.kind}")
            self.log("would_send", **base)
            return
        self._send(action, method, base, block)

    def _send(self, action: Action, method: Any, base: dict[str, Any], block: int) -> None:
        assert self.sender is not None
        base_fee, tip = self.sender.fee_inputs()
        fees = initial_fees(base_fee, tip, self.txm.policy)
        if fees is None:
            self.log("skip", **base, why=f"base fee {base_fee} above the cap")
            return
        now = int(time.time())
        refusal = self.txm.admit(action.key, fees[0], now)
        if refusal is not None:
            self.metrics.inc("refused")
            self.log("skip", **base, why=refusal)
            return
        data = bytes(method.encode_input(*action.args))
        nonce = self.txm.take_nonce()
        tx = PendingTx(
            action.key,
            nonce,
            str(method.contract.address),
            data,
            self.txm.policy.gas_limit,
            fees[0],
            fees[1],
            block,
        )
        try:
            txn_hash = self.sender.send(tx.to, data, nonce, tx.gas_limit, tx.max_fee, tx.tip)
        except Exception as exc:
            self.txm.next_nonce = None  # re-read from the node before the next send
            self.metrics.inc("send_errors")
            self.log("send_error", **base, nonce=nonce, error=" ".join(str(exc).split())[:300])
            return
        self.txm.record_sent(tx, txn_hash)
        self.metrics.inc(f"sent_{action.kind}")
        self.log("sent", **base, nonce=nonce, hash=txn_hash, max_fee=tx.max_fee, tip=tx.tip)

    def _reconcile(self) -> None:
        if self.sender is None or self.dry_run:
            return
        latest, pending = self.sender.nonces()
        hashes = [h for tx in self.txm.pending.values() for h in tx.hashes]
        receipts = self.sender.receipts(hashes)
        head = self.events.head()
        now = int(time.time())
        for tx in self.txm.reconcile(latest, pending, head, now, receipts):
            status = {1: "ok", 0: "reverted", None: "nonce used elsewhere"}[tx.status]
            if tx.status == 0:
                self.metrics.inc("reverted")
            self.log(
                "final",
                kind=tx.key[0],
                account=tx.key[1],
                nonce=tx.nonce,
                status=status,
                block=tx.mined_block,
                gas_used=tx.gas_used,
                replacements=tx.replacements,
                hash=tx.hashes[-1],
            )
        for tx in self.txm.reorged:
            # Its block left the chain and the node forgot it: the planner decides again from
            # the rolled-back mirror, and the action is simulated before anything is sent.
            self.metrics.inc("reorged_out")
            self.log(
                "reorged_out",
                kind=tx.key[0],
                account=tx.key[1],
                nonce=tx.nonce,
                hash=tx.hashes[-1],
                action="re-plan",
            )
        due = self.txm.due_for_replacement(head)
        base_fee = self.sender.fee_inputs()[0] if due else 0
        for tx in due:
            fees, why = self.txm.replacement(tx, now, base_fee)
            if fees is None:
                self.log(
                    "stuck",
                    kind=tx.key[0],
                    account=tx.key[1],
                    nonce=tx.nonce,
                    block=head,
                    max_fee=tx.max_fee,
                    why=why,
                )
                continue
            try:
                h = self.sender.send(tx.to, tx.data, tx.nonce, tx.gas_limit, fees[0], fees[1])
            except Exception as exc:
                self.log("replace_error", nonce=tx.nonce, error=" ".join(str(exc).split())[:300])
                continue
            self.txm.record_replaced(tx, fees[0], fees[1], h, head)
            self.metrics.inc("replaced")
            self.log(
                "replaced",
                kind=tx.key[0],
                account=tx.key[1],
                nonce=tx.nonce,
                block=head,
                hash=h,
                max_fee=fees[0],
                tip=fees[1],
            )

    def _plan_vol(self, now: int) -> list[Action]:
        """The vol feeder: VolOracle updates from the configured source (keeper.runtime.volfeed)."""
        vf = self.s.vol_feed
        if not (self.s.roles.vol_feeder and vf is not None):
            return []
        src = vf.source
        where = src.url if src.kind == "http" else str(self.root / str(src.path))
        try:
            doc = volfeed.read_source(src.kind, str(where), src.timeout_seconds)
            targets = volfeed.parse_source(doc, time.time(), vf.max_source_age_seconds)
        except volfeed.VolSourceError as exc:
            self.metrics.inc("vol_source_errors")
            if str(exc) != self._vol_source_error:  # once per distinct problem, not per block
                self.log("skip", kind="vol_update", why=f"vol source: {exc}")
            self._vol_source_error = str(exc)
            return []
        self._vol_source_error = None
        live = [t for t in targets if t.expiry > now]
        if not live:
            return []
        v = self.vol_oracle
        calls: list[tuple[Any, tuple[Any, ...]]] = [
            (v.vol_min, ()),
            (v.vol_max, ()),
            (v.max_change, ()),
            (v.max_skew, ()),
        ]
        calls += [(v.entry, (t.expiry,)) for t in live]
        got = self.market_reader.reader.batch(calls)
        limits = volfeed.VolLimits(*(int(x) for x in got[:4]))
        entries = {}
        for t, e in zip(live, got[4:], strict=True):
            atm, skew, updated = (int(x) for x in _entry_fields(e))
            entries[t.expiry] = volfeed.VolEntry(atm, skew, updated)
        busy = frozenset(int(s) for k, s in self.txm.in_flight() if k == "vol_update")
        updates = volfeed.plan_vol_updates(
            live,
            entries,
            now,
            limits,
            volfeed.to_wad(vf.deadband),
            vf.refresh_seconds,
            vf.max_expiries_per_block,
            busy,
        )
        return [
            Action(
                "vol_update",
                "vol_oracle",
                (u.expiry, u.atm, u.skew),
                reason=u.reason,
                method="update",
            )
            for u in updates
        ]

    # -- drift check ------------------------------------------------------------------------

    def _drift_check(self, market: Any, params: Any) -> None:
        m = self.mirror
        n = m.n_accounts
        if n == 0:
            return
        k = min(self.s.drift.sample, n)
        rows = [(self._drift_cursor + j) % n for j in range(k)]
        self._drift_cursor = (self._drift_cursor + k) % n
        block = m.last_block
        reads = [self.accounts.read(m.addresses[i], block) for i in rows]
        if self.events.block_hash(block) != m.last_block_hash:
            # Read by number across a reorg: the views may be another branch's; compare nothing.
            raise ChainChangedError(f"block {block} changed during the drift check")
        mismatched = 0
        for i, got in zip(rows, reads, strict=True):
            addr = m.addresses[i]
            a = m.accounts[i]
            mine = (a.shares, a.debt, a.underlying, tuple(a.words()), a.auction_start, a.perp)
            theirs = (
                got.shares, got.debt, got.underlying, got.words, got.auction_start, got.perp
            )  # fmt: skip
            if mine != theirs:
                mismatched += 1
                fields = ("shares", "debt", "underlying", "positions", "auction_start", "perp")
                diff = [f for f, x, y in zip(fields, mine, theirs, strict=True) if x != y]
                self.log("drift", account=addr, block=block, fields=diff, action="repaired")
                repair_account(
                    m, addr, got.shares, got.debt, got.underlying, got.words, got.auction_start,
                    got.perp,
                )  # fmt: skip
        self.metrics.inc("drift_checked", len(rows))
        self.metrics.inc("drift_mismatch", mismatched)
        if mismatched:
            m.evaluate(market, params, m.take_touched())


def build_keeper(bot: Any, settings: KeeperSettings, root: Path, info: DeploymentInfo) -> Keeper:
    """A Keeper for the bot's network and signer, from the deployment record."""
    from ape import project

    provider = bot.provider
    chain_id = info.chain_id
    types = {
        "engine": "MarginEngine",
        "liquidator": "Liquidator",
        "oracle": "OracleAggregator",
        "vol_oracle": "VolOracle",
    }
    contracts = {
        name: getattr(project, kind).at(info.addresses[name]) for name, kind in types.items()
    }
    if "perp_book" in info.addresses:
        contracts["perp_book"] = project.PerpBook.at(info.addresses["perp_book"])
    network = provider.network
    checkpoint = settings.checkpoint_path(network.ecosystem.name, network.name, root)
    # The deployer names pools pool_<fee bps> (kappa_ops.config.PoolSpec).
    pools = [
        (project.ConstantProductPool.at(address), int(name.removeprefix("pool_")))
        for name, address in sorted(info.addresses.items())
        if name.startswith("pool_") and name.removeprefix("pool_").isdigit()
    ]
    return Keeper(
        settings,
        contracts,
        provider,
        bot.signer,
        checkpoint,
        info.start_block,
        chain_id,
        pools=pools,
        root=root,
    )


def _entry_fields(value: Any) -> tuple[Any, ...]:
    from kappa_ops.chain import _fields

    return _fields(value)


__all__ = ["WAD", "Keeper", "build_keeper", "log_line"]
