"""The keeper bot as its own process against an anvil node (DESIGN.md "Keeper", docs/keeper.md).

The test starts anvil, deploys and seeds the demo market (a dozen accounts), writes the vol
feeder's file source, starts `silverback run keeper.runtime.bot:bot` signing as ape's test
account 3, asks its /health and /metrics over HTTP, then adds accounts while the bot runs,
switches the node to 2-second blocks and crashes the mock feeds in steps. Every account that
turns liquidatable in a step's block B must have its auction started (an AuctionStarted log)
in block B + 1 or B + 2. Then two fault drills: the bot is killed (no
shutdown), accounts are added and time moves past the first expiry while it is down, one
account of its checkpoint is corrupted, and it is restarted: it must resume from the checkpoint,
backfill the gap, settle the expiry and every holder's positions, and find and repair the
corrupted account (one `drift` line); then a reorg of blocks it already processed (anvil
snapshot and revert) must be detected and the mirror rebuilt. At the end the bot's checkpoint
(its mirror, written after every block) must equal the contracts' storage views for every
account at the checkpoint's block, bad debt must be 0, every hedge must have left its market
maker inside the band, the VolOracle must hold the source's values exactly, and the bot must
have logged no other fault.

Each chain-side phase runs in a child Python process that connects ape to the node (as in
test_deploy_anvil.py), so the test session never holds a connection.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kappa_ops.keeper_bot import log_lines
from keeper.runtime.localnet import anvil_command
from keeper.runtime.volfeed import to_wad, write_source
from keeper.series import series_terms
from tests.integration.conftest import child_env, free_port, run_driver

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

DRIVER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from keeper.runtime.localnet import connected, demo, attach, add_traders, move_feeds

    phase, port, records = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    out = {}
    with connected(port) as provider:
        from ape import chain
        if phase == "seed":
            d = demo(records, short=True, log=lambda line: None)
            # The setup made the bot's signer (test account 3) the market makers' hedging
            # operator and a VolOracle feeder.
            out["accounts"] = list(d.accounts)
            out["market_makers"] = [str(mm.address) for mm in d.mms]
            out["expiries"] = list(d.expiries)
            out["atm"], out["skew"] = list(d.s.atm_vol), d.s.skew
        elif phase == "crash":
            d = attach(records, log=lambda line: None)
            before = json.loads(sys.argv[4])
            new = add_traders(d, 5000, 4, seed=77)  # accounts created after the bot started
            accounts = before + new
            provider.make_request("evm_setAutomine", [False])
            provider.make_request("evm_setIntervalMining", [2])
            eng, liq = d.engine, d.liquidator
            steps = []
            for spot in (2700.0, 2400.0, 2100.0, 1800.0):
                b = move_feeds(d, spot)
                assert int(d.oracle.price(block_id=b)[0]) == round(spot) * 10**18
                d.arbitrage(spot)  # the pools follow (the hedger trades there)
                newly = [
                    a for a in accounts
                    if int(eng.margin(a, block_id=b)[2]) < 0
                    and int(liq.auction_start(a, block_id=b)) == 0
                ]
                while chain.blocks.head.number < b + 3:
                    time.sleep(0.3)
                started = {}
                for log in liq.AuctionStarted.range(b + 1, b + 3):
                    started.setdefault(str(log.account), int(log.block_number))
                steps.append({"spot": spot, "block": b, "newly": newly, "started": started})
            out = {"steps": steps, "accounts": accounts, "new": new}
        elif phase == "expire":
            # While the bot is down: two more accounts, then time moves past the first expiry
            # and the three feeds publish in one block (the oracle is never stale in between).
            from keeper.series import series_terms, unpack_position
            d = attach(records, log=lambda line: None)
            accounts = json.loads(sys.argv[4])
            new = add_traders(d, 6000, 2, seed=99)
            accounts += new
            first = min(d.expiries)
            w3 = provider.web3
            provider.make_request("evm_setIntervalMining", [0])
            provider.make_request("evm_setAutomine", [False])
            provider.make_request("evm_increaseTime", [first - chain.blocks.head.timestamp + 600])
            spread = d.s.feed_spread
            hashes = [
                w3.eth.send_transaction({
                    "from": str(d.keeper.address), "to": str(feed.address), "gas": 500_000,
                    "data": bytes(feed.set_answer.encode_input(round(1800 * mv * 10**dec))),
                })
                for feed, dec, mv in zip(d.feeds, d.feed_decimals, (1 - spread, 1.0, 1 + spread))
            ]
            provider.make_request("evm_mine", [])
            b = chain.blocks.head.number
            assert all(w3.eth.get_transaction_receipt(h)["status"] == 1 for h in hashes)
            assert int(d.oracle.price()[2]) >= first
            provider.make_request("evm_setIntervalMining", [2])
            holders = [
                a for a in accounts
                if any(series_terms(unpack_position(int(w))[0])[0] == first
                       for w in d.engine.packed_positions(a))
            ]
            out = {"expiry": first, "block": b, "new": new, "holders": holders,
                   "accounts": accounts}
        elif phase == "fork":
            # A reorg: the chain goes back to a snapshot taken before `X` was funded, and `Y`
            # is funded instead; the bot processed the abandoned blocks.
            d = attach(records, log=lambda line: None)
            if sys.argv[4] == "snapshot":
                snap = provider.make_request("evm_snapshot", [])
                d.fund("0x" + "a1" * 20, 1000)
                out = {"snapshot": snap, "block": chain.blocks.head.number}
            else:
                assert provider.make_request("evm_revert", [sys.argv[4]])
                d.fund("0x" + "b2" * 20, 2000)
                out = {"block": chain.blocks.head.number}
        elif phase == "compare":
            ckpt = json.loads(Path(sys.argv[4]).read_text())
            d = attach(records, log=lambda line: None)
            eng, liq = d.engine, d.liquidator
            b = int(ckpt["last_block"])
            mismatches = []
            # The mirror's indices accrued to the block's time are the engine's views'.
            from keeper.runtime.mirror import Mirror
            indices = Mirror.from_checkpoint(ckpt).indices_at(chain.blocks[b].timestamp)
            pool = eng.cash_pool(block_id=b)
            if indices != (int(pool[0]), int(pool[1])):
                mismatches.append(("indices", (int(pool[0]), int(pool[1])), indices))
            from keeper.interest import debt_value, supply_value
            from keeper.series import pack_position
            for a in ckpt["accounts"]:
                addr = a["address"]
                chain_view = [
                    int(eng.cash_shares(addr, block_id=b)),
                    int(eng.cash_debt(addr, block_id=b)),
                    int(eng.cash(addr, block_id=b)),
                    int(eng.underlying_balance(addr, block_id=b)),
                    [int(w) for w in eng.packed_positions(addr, block_id=b)],
                    int(liq.auction_start(addr, block_id=b)),
                ]
                shares, debt = int(a["shares"]), int(a["debt"])
                mirror_view = [
                    shares, debt,
                    supply_value(shares, indices[0]) if shares else -debt_value(debt, indices[1]),
                    int(a["underlying"]), [pack_position(s, q) for s, q in a["positions"]],
                    int(a["auction_start"]),
                ]
                if chain_view != mirror_view:
                    mismatches.append((addr, chain_view, mirror_view))
            from keeper.series import series_terms, unpack_position
            left = [
                a["address"] for a in ckpt["accounts"]
                if any(int(eng.settlement_price(series_terms(unpack_position(int(w))[0])[0],
                                                block_id=b))
                       for w in eng.packed_positions(a["address"], block_id=b))
            ]
            def ratio(account, block):
                delta = int(eng.account_greeks(account, block_id=block)[0]) / 10**18
                gross = sum(abs(unpack_position(int(w))[1])
                            for w in eng.packed_positions(account, block_id=block)) / 10**18
                return abs(delta) / gross if gross else 0.0

            def market(block):
                # The price, every vol entry (its age too: a stale entry is marked up) and
                # every settlement price.
                return (int(d.oracle.price(block_id=block)[0]),
                        [tuple(d.vol.entry(e, block_id=block)) for e in d.expiries],
                        [int(eng.settlement_price(e, block_id=block)) for e in d.expiries])

            ratios = [ratio(mm.address, b) for mm in d.mms]
            # Each hedge, measured at the end of its block where neither the market nor the
            # account's positions moved in that block (a price or vol move, a settlement, or a
            # vol refresh of a stale entry in the same block changes the delta it targeted).
            after_hedge, moved = [], 0
            for account, block in json.loads(sys.argv[5]) if len(sys.argv) > 5 else []:
                held = [list(eng.packed_positions(account, block_id=x)) for x in (block - 1, block)]
                if market(block) != market(block - 1) or held[0] != held[1]:
                    moved += 1
                    continue
                after_hedge.append((account, block, ratio(account, block)))
            vol_entries = {str(e): [int(x) for x in tuple(d.vol.entry(e, block_id=b))[:2]]
                           for e in d.expiries if e > chain.blocks[b].timestamp}
            out = {"block": b, "accounts": [a["address"] for a in ckpt["accounts"]],
                   "mm_delta_ratio": ratios, "after_hedge": after_hedge, "hedges_moved": moved,
                   "bad_debt": int(liq.bad_debt(block_id=b)), "vol": vol_entries,
                   "mismatches": mismatches, "head": chain.blocks.head.number,
                   "left_on_settled": left}
    print("RESULT " + json.dumps(out))
    """
)


def _drive(*args: str, timeout: int) -> dict:
    return run_driver(DRIVER, *args, timeout=timeout)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _get(url: str) -> tuple[int, str]:
    """A real HTTP GET: (status, body); (0, error) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def _health(port: int) -> tuple[int, dict]:
    code, body = _get(f"http://127.0.0.1:{port}/health")
    return code, (json.loads(body) if code else {})


def test_keeper_bot_starts_auctions_and_mirrors_the_chain(tmp_path: Path):
    env = child_env()
    assert shutil.which("anvil", path=env["PATH"]), "anvil missing: run `make setup` first"
    port, health_port, metrics_port = free_port(), free_port(), free_port()
    records = tmp_path / "deployments"
    checkpoint = tmp_path / "keeper.json"
    vol_source = tmp_path / "vol-source.json"
    config = tmp_path / "base-local.yaml"
    config.write_text(
        f"extends: {ROOT / 'deploy' / 'networks' / 'base-local.yaml'}\n"
        "keeper:\n"
        f"  checkpoint: {checkpoint}\n"
        "  drift: {every_blocks: 2, sample: 6}\n"
        "  roles: {hedger: true, vol_feeder: true}\n"
        "  hedge: {band: 0.02}\n"
        f"  vol_feed: {{source: {{kind: file, path: {vol_source}}},"
        " max_source_age_seconds: 100000}\n"
        f"  health: {{port: {health_port}, max_lag_blocks: 3}}\n"
        f"  metrics_port: {metrics_port}\n"
    )
    node_log = (tmp_path / "anvil.log").open("wb")
    anvil = subprocess.Popen(anvil_command(port), stdout=node_log, stderr=node_log)
    bot: subprocess.Popen | None = None
    bot_log, bot_log2, dry_log = tmp_path / "bot.log", tmp_path / "bot2.log", tmp_path / "dry.log"
    try:
        seeded = _drive("seed", str(port), str(records), timeout=240)
        # The vol feeder's source: every expiry's ATM vol 5 points above what the market
        # was listed at; the bot must bring the VolOracle there.
        targets = [
            (e, a + 0.05, seeded["skew"])
            for e, a in zip(seeded["expiries"], seeded["atm"], strict=True)
        ]
        write_source(vol_source, targets, time.time())
        bot_env = {
            **env,
            "APE_FOUNDRY_HOST": f"http://127.0.0.1:{port}",
            "KAPPA_KEEPER_CONFIG": str(config),
            "KAPPA_RECORDS_DIR": str(records),
        }
        bot_cmd = [
            str(Path(sys.executable).parent / "silverback"),
            "run",
            "keeper.runtime.bot:bot",
            "--network",
            "base:local:foundry",
            "--account",
            "TEST::3",
        ]
        with bot_log.open("wb") as out:
            bot = subprocess.Popen(
                bot_cmd, cwd=ROOT, env=bot_env, stdout=out, stderr=subprocess.STDOUT
            )
        _wait(lambda: any(x["event"] == "backfill" for x in log_lines(bot_log)), 120, "backfill")
        # The health endpoint, asked as a probe would: ok, with the backfilled block.
        _wait(lambda: _health(health_port)[0] == 200, 60, "a healthy /health")
        code, health = _health(health_port)
        backfilled = next(x for x in log_lines(bot_log) if x["event"] == "backfill")
        assert health["status"] == "ok" and health["reasons"] == []
        assert health["last_block"] >= backfilled["end"] and health["head"] >= health["last_block"]
        assert 0 <= health["lag_blocks"] <= 3
        assert health["accounts"] == backfilled["accounts"]
        assert {"monitor", "liquidator", "settler", "hedger", "vol_feeder"} <= set(health["roles"])
        assert health["signer"] and health["dry_run"] is False
        assert _get(f"http://127.0.0.1:{health_port}/other")[0] == 404
        crash = _drive(
            "crash", str(port), str(records), json.dumps(seeded["accounts"]), timeout=240
        )
        # Every account that turned liquidatable had its auction started within 2 blocks.
        turned = 0
        for step in crash["steps"]:
            for account in step["newly"]:
                turned += 1
                assert account in step["started"], (step, account)
                assert step["block"] < step["started"][account] <= step["block"] + 2, step
        assert turned >= 3, crash["steps"]
        assert bot.poll() is None, bot_log.read_text()[-3000:]
        code, metrics = _get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert code == 200 and "kappa_keeper_sent_start_auction_total" in metrics
        code, health = _health(health_port)
        assert code == 200 and health["last_block"] >= crash["steps"][-1]["block"]
        # Fault drill: the bot dies without shutting down; the chain moves on without it.
        bot.kill()
        bot.wait(timeout=30)
        assert _health(health_port)[0] == 0  # nothing answers for a dead bot
        expired = _drive(
            "expire", str(port), str(records), json.dumps(crash["accounts"]), timeout=180
        )
        assert expired["holders"], expired
        # Fault drill: the checkpoint disagrees with the chain for one account (the insurance
        # fund's cash shares); the drift check must find it, log it and repair it.
        record = json.loads((records / "base-local-31337.json").read_text())
        fund = record["contracts"]["liquidator"]
        data = json.loads(checkpoint.read_text())
        entry = next(a for a in data["accounts"] if a["address"].lower() == fund["address"].lower())
        entry["shares"] += 12345
        checkpoint.write_text(json.dumps(data))
        # A dry-run bot (its own checkpoint) plans and simulates the settlement, sends nothing.
        dry_config = tmp_path / "dry.yaml"
        dry_config.write_text(
            f"extends: {config}\nkeeper:\n  dry_run: true\n  checkpoint: {tmp_path / 'dry.json'}\n"
        )
        with dry_log.open("wb") as out:
            dry = subprocess.Popen(
                bot_cmd,
                cwd=ROOT,
                env={**bot_env, "KAPPA_KEEPER_CONFIG": str(dry_config)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait(
                lambda: any(
                    x["event"] == "would_send" and x["kind"] == "settle_expiry"
                    for x in log_lines(dry_log)
                ),
                90,
                "the dry run's settle_expiry",
            )
        finally:
            dry.send_signal(signal.SIGINT)
            dry.wait(timeout=30)
        with bot_log2.open("wb") as out:
            bot = subprocess.Popen(
                bot_cmd, cwd=ROOT, env=bot_env, stdout=out, stderr=subprocess.STDOUT
            )

        def settled() -> bool:
            data = json.loads(checkpoint.read_text())
            held = {
                a["address"]
                for a in data["accounts"]
                for sid, _ in a["positions"]
                if series_terms(int(sid))[0] == expired["expiry"]
            }
            return int(data["last_block"]) >= expired["block"] + 3 and not held

        _wait(settled, 90, "the settlement of the first expiry")
        _wait(lambda: any(x["event"] == "drift" for x in log_lines(bot_log2)), 60, "drift")
        _wait(lambda: _health(health_port)[0] == 200, 60, "the restarted bot's /health")
        hedges = [
            [x["account"], x["block"]]
            for x in log_lines(bot_log) + log_lines(bot_log2)
            if x["event"] == "final" and x["kind"] == "swap" and x["status"] == "ok"
        ]
        result = _drive(
            "compare", str(port), str(records), str(checkpoint), json.dumps(hedges), timeout=300
        )
        assert result["mismatches"] == []
        assert result["bad_debt"] == 0
        # Every hedge left its account inside the band (0.02 of the gross option size).
        assert result["after_hedge"], result
        assert [x for x in result["after_hedge"] if x[2] > 0.02] == [], result["hedges_moved"]
        # The vol feeder brought every live expiry to its source's values, exactly.
        wanted = {str(e): [to_wad(a), to_wad(k)] for e, a, k in targets}
        assert result["vol"] and all(wanted[e] == v for e, v in result["vol"].items()), result
        assert result["left_on_settled"] == []
        mirrored = {a.lower() for a in result["accounts"]}
        assert {a.lower() for a in expired["accounts"]} <= mirrored
        assert {a.lower() for a in crash["new"] + expired["new"]} <= mirrored

        # Fault drill: a reorg of blocks the bot already processed.
        def mirrored_now() -> set[str]:
            return {a["address"].lower() for a in json.loads(checkpoint.read_text())["accounts"]}

        x, y = "0x" + "a1" * 20, "0x" + "b2" * 20
        fork = _drive("fork", str(port), str(records), "snapshot", timeout=120)
        _wait(lambda: x in mirrored_now(), 60, "the abandoned branch in the mirror")
        _drive("fork", str(port), str(records), fork["snapshot"], timeout=120)
        _wait(lambda: y in mirrored_now() and x not in mirrored_now(), 90, "the reorg rebuild")
        result = _drive("compare", str(port), str(records), str(checkpoint), timeout=180)
        assert result["mismatches"] == []
    finally:
        if bot is not None and bot.poll() is None:
            bot.send_signal(signal.SIGINT)
            try:
                bot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bot.kill()
        anvil.terminate()
        anvil.wait(timeout=30)
        node_log.close()
    first, second = log_lines(bot_log), log_lines(bot_log2)
    faults = [x for x in first + second if x["event"] in ("error", "drift", "send_error")]
    assert [(x["event"], x.get("account", "").lower(), x.get("fields")) for x in faults] == [
        ("drift", fund["address"].lower(), ["shares"])
    ]
    assert sum(x["event"] == "reorg" for x in second) == 1
    sent = [x for x in first if x["event"] == "sent"]
    assert sum(x["kind"] == "start_auction" for x in sent) >= turned
    final = [x for x in first + second if x["event"] == "final"]
    # Hedge swaps race the market: one simulated before a price move can revert when mined after
    # it (the engine's swap-loss guard); every other transaction must succeed.
    assert final and all(x["status"] == "ok" for x in final if x["kind"] != "swap")
    # The restart resumed from the checkpoint, and backfilled what happened while it was down.
    loaded = next(x for x in second if x["event"] == "checkpoint_loaded")
    assert loaded["block"] >= crash["steps"][-1]["block"]
    backfill = next(x for x in second if x["event"] == "backfill")
    assert backfill["start"] == loaded["block"] + 1 and backfill["events"] > 0
    kinds = [x["kind"] for x in final if x in second]
    assert "settle_expiry" in kinds
    # The hedger kept the market makers' delta inside the band, through the pools.
    swaps = [x for x in final if x["kind"] == "swap" and x["status"] == "ok"]
    assert swaps and {x["account"] for x in swaps} <= {a.lower() for a in seeded["market_makers"]}
    assert all(r <= 0.05 for r in result["mm_delta_ratio"]), result["mm_delta_ratio"]
    # Every holder's expired positions are settled (`left_on_settled == []` above, over every
    # mirrored account, holders included): the bot's settle_positions for most of them; a
    # holder that trades or takes a portfolio (the bot itself, by bidding) is settled by that
    # transaction first (MarginEngine._settle_expired).
    assert 1 <= sum(k == "settle_positions" for k in kinds) <= len(expired["holders"])
    assert any(x["event"] == "shutdown" for x in second)
    dry_lines = log_lines(dry_log)
    assert not [x for x in dry_lines if x["event"] in ("sent", "final", "error")]
    assert next(x for x in dry_lines if x["event"] == "startup")["dry_run"] is True
