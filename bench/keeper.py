"""Keeper bot benchmark: the event-sourced mirror on 10,000 accounts x 16 positions.

A synthetic engine history is fed to keeper.runtime.mirror as decoded events (no node): 400
listed series (8 expiries from 7 to 180 days, 25 strikes from 0.6 to 1.4 x spot, calls and
puts), one cash deposit per account (and the underlying for a third of them), and fills between
account pairs so that every account holds exactly 16 positions (sizes 1..20 options). Then:

- `apply_events_per_s`: the rate at which the mirror applies those events (exact integers);
- `cold_build_ms`: the first full evaluation, which builds every shard's series book once;
- `block_ms_p50`: one block after a price move (spot x U(0.9, 1.1), vols x exp(N(0, 0.1)),
  time + 2 s): the full re-evaluation of every account from the cached books (keeper.margin
  MtM, H_IM, H_MM, witnesses) plus the block's plan (keeper.runtime.planner);
- `block_ms_p50_with_greeks`: the same with the account Greeks (the monitor's default);
- `incremental_ms_p50`: one block in which one account's event arrived (a deposit) and the
  market did not move: that account's re-evaluation plus the plan;
- `baseline_full_rebuild_ms_p50`: what a keeper without a mirror does each block (the crash
  demo's path, kappa_ops.chain.ChainReader): every account's cash, underlying and packed
  positions decoded into fresh arrays, a new Portfolios (so a new series book) and a full
  evaluation, plus the plan. The RPC reads themselves are not counted (they would only make
  the baseline slower: Multicall3 batches of 400 calls, ~40,000 calls for 10,000 accounts);
- the ratios baseline / block and baseline / incremental;
- `scale_out`: the same history for SCALE_ACCOUNTS = 100,000 accounts, and the price-move block
  (full re-evaluation + plan) done by one keeper and by each of two workers of a distributed bot
  (keeper/runtime/sharding.py: a worker evaluates its own mirror books, every other one, then
  plans and keeps its own rows' actions): `one_worker_ms_p50`, `two_workers_ms_p50` (each
  worker's, and the larger), and `ratio_one_over_two_workers`. The workers run on separate
  cores in production, so the block's wall time with two workers is the larger of the two
  figures; here both are measured one after the other in this process.

With `--node`, also against a local anvil node: the demo market deployed and seeded, then a
history of NODE_ACCOUNTS x NODE_ROUNDS real engine deposits (`deposit_for`, cash and underlying
in turn, one Deposit event each) made NODE_BATCH to a transaction by
bench/contracts/DepositBatcher.vy, the transactions sent without waiting (`node_history_*`):
- `node_events`, `node_backfill_s`, `node_backfill_events_per_s`, `node_backfill_blocks_per_s`:
  the bot's own startup backfill, keeper.runtime.service.Keeper.catch_up (reorg check,
  `eth_getLogs` over both contracts in chunks of `backfill_chunk` blocks, set so that no
  request exceeds NODE_LOG_LIMIT logs, the hosted RPCs' cap; decoding; mirror application; the
  checkpoint); afterwards NODE_SAMPLE accounts of the mirror must equal the engine's and the
  liquidator's views at the head exactly, else the bench fails;
- `node_full_read_ms`: the baseline, one full re-read of every account as the crash demo does
  it each block (kappa_ops.chain.ChainReader.snapshot: Multicall3 batches of 400 views),
  measured on the first NODE_READ_SAMPLE accounts (`node_full_read_sample_ms`) and scaled to
  all of them (the reads are uniform batches); `ratio_full_read_over_backfill` compares one
  such block read with the whole backfill.

Timings are wall clock, one thread, medians over ROUNDS blocks. Writes
bench/results/keeper.json. Run: `.venv/bin/python -m bench.keeper [--node]`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from bench.common import table, write_result
from keeper import margin as km
from keeper.runtime.mirror import WAD, Event, Mirror
from keeper.runtime.planner import BlockInputs, LiquidatorTerms, plan_block
from keeper.runtime.settings import KeeperSettings
from keeper.series import series_id, series_terms, unpack_position
from tests.deployment import MARGIN_PARAMS

ACCOUNTS = 10_000
POSITIONS = 16
ROUNDS = 15
SEED = 21
SPOT = 3000.0
NOW = 1_800_000_000
DAY = 86_400
USD = "0x" + "11" * 20
WETH = "0x" + "22" * 20
# The test deployment's risk parameters with a higher sigma_ref floor.
PARAMS = replace(MARGIN_PARAMS, ref_vol=0.8)
TERMS = LiquidatorTerms(0.02, 0.15, 600, 0.5, 50.0, 100.0)


def _expiries() -> list[int]:
    base = NOW - NOW % 3600
    return [base + d * DAY for d in (7, 14, 30, 45, 60, 90, 120, 180)]


def history(
    rng: np.random.Generator, accounts: int = ACCOUNTS
) -> tuple[list[str], list[Event], list[int]]:
    """Addresses, the events and the listed series ids."""
    expiries = _expiries()
    strikes = [round(SPOT * m) for m in np.linspace(0.6, 1.4, 25)]
    sids = [series_id(e, k * WAD, c) for e in expiries for k in strikes for c in (True, False)]
    events: list[Event] = []
    block = 1
    for sid in sids:
        e, k, c = series_terms(sid)
        events.append(
            Event(
                "SeriesListed", block, 0, {"series_id": sid, "expiry": e, "strike": k, "is_call": c}
            )
        )
    addresses = [f"0x{i + 1:040x}" for i in range(accounts)]
    cash = rng.integers(20_000, 400_000, accounts)
    for i, a in enumerate(addresses):
        block += 1
        events.append(
            Event(
                "Deposit",
                block,
                0,
                {
                    "account": a,
                    "payer": a,
                    "token": USD,
                    "amount": int(cash[i]) * 10**6,
                    "amount_wad": int(cash[i]) * WAD,
                },
            )
        )
        if i % 3 == 0:
            events.append(
                Event(
                    "Deposit",
                    block,
                    1,
                    {
                        "account": a,
                        "payer": a,
                        "token": WETH,
                        "amount": 5 * WAD,
                        "amount_wad": 5 * WAD,
                    },
                )
            )
    for p in range(0, accounts, 2):
        maker, taker = addresses[p], addresses[p + 1]
        chosen = rng.choice(len(sids), POSITIONS, replace=False)
        sizes = rng.integers(1, 21, POSITIONS)
        buys = rng.random(POSITIONS) < 0.5
        for j in range(POSITIONS):
            block += 1
            size = int(sizes[j]) * WAD
            events.append(
                Event(
                    "Fill",
                    block,
                    0,
                    {
                        "order_hash": b"",
                        "maker": maker,
                        "taker": taker,
                        "series_id": sids[int(chosen[j])],
                        "maker_is_buy": bool(buys[j]),
                        "amount": size,
                        "price": 50 * WAD,
                        "premium": int(sizes[j]) * 50 * WAD,
                    },
                )
            )
    return addresses, events, sids


def market(rng: np.random.Generator | None, now: int) -> km.Market:
    expiries = np.array(_expiries())
    atm = np.linspace(0.8, 0.6, expiries.size)
    spot = SPOT
    if rng is not None:
        spot *= float(rng.uniform(0.9, 1.1))
        atm = atm * np.exp(rng.normal(0.0, 0.1, atm.size))
    return km.Market(
        spot=spot,
        confidence=1.0,
        now=now,
        expiries=expiries,
        atm=atm,
        skew=np.full(expiries.size, -0.1),
        settlement=np.full(expiries.size, np.nan),
        vol_min=0.05,
        vol_max=5.0,
    )


def plan(m: Mirror, now: int, settings: KeeperSettings) -> int:
    ev = m.evaluation
    x = BlockInputs(
        addresses=m.addresses,
        mtm=ev.mtm,
        health_im=ev.health_im,
        health_mm=ev.health_mm,
        witness_mm=ev.witness_mm,
        auction_start=m.auction_start,
        now=now,
        terms=TERMS,
        listed_expiries=m.expiries,
        settlement=m.settlement,
    )
    return len(plan_block(x, settings))


def rebuild_from_reads(m: Mirror) -> km.Portfolios:
    """The no-mirror keeper's per-block rebuild (kappa_ops.chain.ChainReader.portfolios): every
    account's values as a chain read returns them (cash, underlying, packed words), decoded."""
    cash = [a.cash(m.supply_index, m.borrow_index) for a in m.accounts]
    under = [a.underlying for a in m.accounts]
    words = [a.words() for a in m.accounts]
    n = len(cash)
    positions = [[unpack_position(w) for w in ws] for ws in words]
    width = max([len(p) for p in positions] + [1])
    strike = np.ones((n, width))
    expiry = np.zeros((n, width), dtype=np.int64)
    is_call = np.zeros((n, width), dtype=bool)
    size = np.zeros((n, width))
    for i, pos in enumerate(positions):
        for j, (sid, q) in enumerate(pos):
            e, k, c = series_terms(sid)
            strike[i, j], expiry[i, j], is_call[i, j], size[i, j] = k / WAD, e, c, q / WAD
    return km.Portfolios(
        np.array(cash, dtype=np.float64) / WAD,
        np.array(under, dtype=np.float64) / WAD,
        strike,
        expiry,
        is_call,
        size,
    )


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


SCALE_ACCOUNTS = 100_000
SCALE_ROUNDS = 5


def scale_out() -> dict[str, object]:
    """Per-block work at SCALE_ACCOUNTS accounts with one keeper and with two workers (see the
    module)."""
    from keeper.runtime.sharding import own_books, row_owner

    rng = np.random.default_rng(SEED + 1)
    _, events, _ = history(rng, SCALE_ACCOUNTS)
    m = Mirror(USD, WETH, 10**12, 1, width=POSITIONS, shard_size=1024)
    m.apply_many(events)
    del events
    settings = KeeperSettings()
    now = NOW
    m.take_touched()
    m.evaluate(market(None, now), PARAMS)  # the cold build of every book, once
    n_books = -(-m.n_accounts // m.shard_size)
    owners = row_owner(np.arange(m.n_accounts), m.shard_size, 2)
    one, two = [], []

    def worker_block(mk: km.Market, now: int, index: int) -> None:
        # As keeper.runtime.service does: its books evaluated, the plan on the mirror's arrays
        # (vectorized; the other worker's rows keep their last numbers), then its own actions.
        m.evaluate(mk, PARAMS, books=own_books(n_books, index, 2))
        plan(m, now, settings)

    for _ in range(SCALE_ROUNDS):
        now += 2
        mk = market(rng, now)
        one.append(timed(lambda mk=mk, now=now: (m.evaluate(mk, PARAMS), plan(m, now, settings))))
        now += 2
        mk = market(rng, now)
        two.append([timed(lambda mk=mk, now=now, i=i: worker_block(mk, now, i)) for i in (0, 1)])
    per_worker = np.median(np.array(two), axis=0)
    slowest = float(np.median(np.max(np.array(two), axis=1)))
    return {
        "accounts": SCALE_ACCOUNTS,
        "positions_per_account": POSITIONS,
        "rounds": SCALE_ROUNDS,
        "one_worker_ms_p50": round(float(np.median(one)), 1),
        "two_workers_ms_p50": [round(float(x), 1) for x in per_worker],
        "two_workers_slowest_ms_p50": round(slowest, 1),
        "accounts_per_worker": [int(np.sum(owners == i)) for i in (0, 1)],
        "ratio_one_over_two_workers": round(float(np.median(one)) / slowest, 2),
    }


# The local node's history (see the module): NODE_ACCOUNTS accounts, NODE_ROUNDS deposits each
# (cash and underlying in turn) through bench/contracts/DepositBatcher.vy, NODE_BATCH deposits
# a transaction and so a block.
NODE_ACCOUNTS = 10_000
NODE_ROUNDS = 10
NODE_BATCH = 200
NODE_FIRST = 0xBEEF0000
# Blocks per eth_getLogs: hosted RPCs answer at most 10,000 logs (Alchemy, Infura), so the
# keeper's `backfill_chunk` is set to keep every request under that at this history's density.
NODE_LOG_LIMIT = 10_000
NODE_SAMPLE = 200  # accounts compared with the engine's views after the backfill
NODE_READ_SAMPLE = 1_000  # accounts re-read the crash demo's way


def _batcher(w3: object, sender: str) -> object:
    """bench/contracts/DepositBatcher.vy compiled by the pinned vyper and deployed."""
    from pathlib import Path

    import vyper

    src = (Path(__file__).resolve().parent / "contracts" / "DepositBatcher.vy").read_text()
    out = vyper.compile_code(src, output_formats=["abi", "bytecode"])
    factory = w3.eth.contract(abi=out["abi"], bytecode=out["bytecode"])  # type: ignore[attr-defined]
    tx = factory.constructor().transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx)  # type: ignore[attr-defined]
    return w3.eth.contract(address=receipt["contractAddress"], abi=out["abi"])  # type: ignore[attr-defined]


def node_history(d: object, w3: object) -> tuple[int, float]:
    """NODE_ACCOUNTS x NODE_ROUNDS real `deposit_for` calls, batched; returns (deposits, s)."""
    sender = str(d.keeper.address)  # type: ignore[attr-defined]
    engine = str(d.engine.address)  # type: ignore[attr-defined]
    usd, weth = d.usd, d.weth  # type: ignore[attr-defined]
    t = time.perf_counter()
    b = _batcher(w3, sender)
    amounts = {str(usd.address): 10**6, str(weth.address): 10**15}  # 1 USD, 0.001 WETH
    tokens = [str(usd.address), str(weth.address)]
    per_token = NODE_ACCOUNTS * -(-NODE_ROUNDS // 2)
    for token in (usd, weth):
        token.mint(b.address, amounts[str(token.address)] * per_token, sender=d.keeper)  # type: ignore[attr-defined]
        h = b.functions.approve(str(token.address), engine).transact({"from": sender})  # type: ignore[attr-defined]
        w3.eth.wait_for_transaction_receipt(h)  # type: ignore[attr-defined]
    hashes = []
    for r in range(NODE_ROUNDS):
        token = tokens[r % 2]
        for lo in range(0, NODE_ACCOUNTS, NODE_BATCH):
            count = min(NODE_BATCH, NODE_ACCOUNTS - lo)
            call = b.functions.deposit_many(engine, token, NODE_FIRST + lo, count, amounts[token])  # type: ignore[attr-defined]
            # Sent without waiting: anvil mines each on arrival, one block a batch.
            hashes.append(call.transact({"from": sender, "gas": 29_000_000}))
    for h in hashes:
        if int(w3.eth.wait_for_transaction_receipt(h, timeout=600)["status"]) != 1:  # type: ignore[attr-defined]
            raise RuntimeError("bench: a deposit batch reverted")
    return NODE_ROUNDS * NODE_ACCOUNTS, time.perf_counter() - t


def node_figures() -> dict[str, object]:
    """Backfill rate and a full re-read against a local anvil node (see the module)."""
    import socket
    import subprocess
    import tempfile
    from pathlib import Path

    from keeper.runtime.chain import AccountReader
    from keeper.runtime.localnet import anvil_command, connected, demo
    from keeper.runtime.service import Keeper

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    node = subprocess.Popen(
        anvil_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as tmp, connected(port) as provider:
            d = demo(Path(tmp), short=True, log=lambda _line: None)
            w3 = provider.web3
            deposits, history_s = node_history(d, w3)
            record = json.loads((Path(tmp) / "base-local-31337.json").read_text())
            start = int(record["contracts"]["engine"]["block"])
            head = int(w3.eth.block_number)
            density = -(-(deposits + 1) // (NODE_ROUNDS * -(-NODE_ACCOUNTS // NODE_BATCH)))
            chunk = max(NODE_LOG_LIMIT // density, 1)
            settings = KeeperSettings(backfill_chunk=chunk, confirmations=0)
            contracts = {
                "engine": d.engine,
                "liquidator": d.liquidator,
                "oracle": d.oracle,
                "vol_oracle": d.vol,
            }
            # The bot's own backfill (keeper.runtime.service.Keeper.catch_up): the reorg
            # check, eth_getLogs in chunks of `backfill_chunk` blocks with the chunk's hash
            # read around it, decoding, the mirror's application and the checkpoint.
            keeper = Keeper(
                settings,
                contracts,
                provider,
                None,
                Path(tmp) / "checkpoint.json",
                start,
                31337,
                log=lambda *_a, **_k: None,
            )
            t = time.perf_counter()
            keeper.catch_up()
            backfill_s = time.perf_counter() - t
            mirror = keeper.mirror
            events = int(keeper.metrics.counters["events"])
            assert mirror.last_block == head, (mirror.last_block, head)
            # The mirror against the engine's and liquidator's views (exact integers).
            reader = AccountReader(d.engine, d.liquidator)
            rng = np.random.default_rng(SEED)
            rows = rng.choice(mirror.n_accounts, min(NODE_SAMPLE, mirror.n_accounts), replace=False)
            for i in (int(x) for x in rows):
                a, got = mirror.accounts[i], reader.read(mirror.addresses[i], head)
                mine = (a.shares, a.debt, a.underlying, tuple(a.words()), a.auction_start)
                theirs = (got.shares, got.debt, got.underlying, got.words, got.auction_start)
                if mine != theirs:
                    raise RuntimeError(f"bench: mirror != chain for {mirror.addresses[i]}")
            addresses = list(mirror.addresses)
            sample = addresses[:NODE_READ_SAMPLE]
            now = int(w3.eth.get_block("latest")["timestamp"])
            read_ms = timed(lambda: d.reader.snapshot(sample, now))
            per_account_ms = read_ms / len(sample)
            full_read_ms = per_account_ms * len(addresses)
            return {
                "node_accounts": len(addresses),
                "node_blocks": head - start + 1,
                "node_events": events,
                "node_history_deposits": deposits,
                "node_history_build_s": round(history_s, 1),
                "node_backfill_chunk_blocks": chunk,
                "node_backfill_s": round(backfill_s, 3),
                "node_backfill_events_per_s": round(events / backfill_s),
                "node_backfill_blocks_per_s": round((head - start + 1) / backfill_s),
                "node_backfill_checked_accounts": len(rows),
                "node_full_read_sample_accounts": len(sample),
                "node_full_read_sample_ms": round(read_ms, 1),
                "node_full_read_ms": round(full_read_ms, 1),
                "ratio_full_read_over_backfill": round(full_read_ms / (backfill_s * 1e3), 2),
            }
    finally:
        node.terminate()
        node.wait(timeout=30)


def main(with_node: bool = False) -> dict[str, object]:
    rng = np.random.default_rng(SEED)
    addresses, events, sids = history(rng)
    m = Mirror(USD, WETH, 10**12, 1, width=POSITIONS, shard_size=1024)
    t = time.perf_counter()
    m.apply_many(events)
    apply_s = time.perf_counter() - t
    settings = KeeperSettings()
    assert m.n_accounts == ACCOUNTS
    assert all(len(a.positions) == POSITIONS for a in m.accounts)
    now = NOW
    m.take_touched()
    cold_ms = timed(lambda: m.evaluate(market(None, now), PARAMS))
    block, block_greeks, incremental, baseline = [], [], [], []
    for r in range(ROUNDS):
        now += 2
        mk = market(rng, now)
        block.append(timed(lambda mk=mk, now=now: (m.evaluate(mk, PARAMS), plan(m, now, settings))))
        block_greeks.append(
            timed(
                lambda mk=mk, now=now: (m.evaluate(mk, PARAMS, greeks=True), plan(m, now, settings))
            )
        )
        # One account's event, no market move.
        now += 2
        mk = market(None, now)
        i = int(rng.integers(ACCOUNTS))
        m.apply(
            Event(
                "Deposit",
                10**7 + r,
                0,
                {
                    "account": addresses[i],
                    "payer": addresses[i],
                    "token": USD,
                    "amount": 10**6,
                    "amount_wad": WAD,
                },
            )
        )

        def one(mk: km.Market = mk, now: int = now) -> None:
            m.evaluate(mk, PARAMS, m.take_touched())
            plan(m, now, settings)

        incremental.append(timed(one))
        if r < 5:
            baseline.append(
                timed(
                    lambda mk=mk, now=now: (
                        km.evaluate(rebuild_from_reads(m), mk, PARAMS),
                        plan(m, now, settings),
                    )
                )
            )
    # The mirror's numbers are the rebuilt path's numbers, exactly.
    mk = market(None, now)
    m.evaluate(mk, PARAMS)
    direct = km.evaluate(rebuild_from_reads(m), mk, PARAMS)
    max_diff = float(np.max(np.abs(direct.health_mm - m.evaluation.health_mm)))
    result: dict[str, object] = {
        "accounts": ACCOUNTS,
        "positions_per_account": POSITIONS,
        "series": len(sids),
        "events": len(events),
        "shard_size": m.shard_size,
        "apply_events_per_s": round(len(events) / apply_s),
        "cold_build_ms": round(cold_ms, 2),
        "block_ms_p50": round(float(np.median(block)), 2),
        "block_ms_p50_with_greeks": round(float(np.median(block_greeks)), 2),
        "incremental_ms_p50": round(float(np.median(incremental)), 3),
        "baseline_full_rebuild_ms_p50": round(float(np.median(baseline)), 2),
        "ratio_baseline_over_block": round(float(np.median(baseline) / np.median(block)), 2),
        "ratio_baseline_over_incremental": round(
            float(np.median(baseline) / np.median(incremental)), 1
        ),
        "max_abs_diff_health_mm_vs_rebuild": max_diff,
        "rounds": ROUNDS,
    }
    result["scale_out"] = scale = scale_out()
    command = "python -m bench.keeper"
    if with_node:
        result.update(node_figures())
        command += " --node"
    path = write_result("keeper", result, command)
    rows = [
        (
            "price move: full re-evaluation + plan",
            result["block_ms_p50"],
            result["ratio_baseline_over_block"],
        ),
        (
            "one account's event + plan",
            result["incremental_ms_p50"],
            result["ratio_baseline_over_incremental"],
        ),
        (
            "baseline: re-read + rebuild + evaluate + plan",
            result["baseline_full_rebuild_ms_p50"],
            None,
        ),
    ]
    print(
        table(
            ("per block (10,000 x 16)", "ms p50", "baseline / this"),
            [(a, b, c if c is not None else "-") for a, b, c in rows],
        )
    )
    print(
        table(
            (f"per block ({SCALE_ACCOUNTS:,} x {POSITIONS}), price move", "ms p50", "1 / this"),
            [
                ("one keeper", scale["one_worker_ms_p50"], 1.0),
                (
                    "two workers (the slower one)",
                    scale["two_workers_slowest_ms_p50"],
                    scale["ratio_one_over_two_workers"],
                ),
            ],
        )
    )
    if with_node:
        backfill_ms = float(result["node_backfill_s"]) * 1e3  # type: ignore[arg-type]
        print(
            table(
                (f"local node, {result['node_accounts']:,} accounts", "ms", "full read / this"),
                [
                    (
                        f"backfill of {result['node_events']:,} events (the bot's catch_up)",
                        round(backfill_ms, 1),
                        result["ratio_full_read_over_backfill"],
                    ),
                    ("baseline: one full read of every account", result["node_full_read_ms"], 1.0),
                ],
            )
        )
        print(f"backfill: {result['node_backfill_events_per_s']:,} events/s")
    print(
        f"events applied: {result['apply_events_per_s']:,}/s; cold build {cold_ms:.0f} ms; "
        f"baseline / price-move block {result['ratio_baseline_over_block']}x; wrote {path}"
    )
    return result


if __name__ == "__main__":
    import sys

    main(with_node="--node" in sys.argv[1:])
