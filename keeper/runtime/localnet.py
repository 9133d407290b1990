"""A local demo chain for the keeper bot (`make keeper`, tests/integration/test_keeper_bot.py).

    python -m keeper.runtime.localnet up    --port 8545      # anvil in the background + seed
    python -m keeper.runtime.localnet node  --port 8545      # anvil, in the foreground
    python -m keeper.runtime.localnet seed  --port 8545      # deploy + seed the demo market
    python -m keeper.runtime.localnet crash --port 8545 --spot 2100   # feeds (+ pools) move
    python -m keeper.runtime.localnet traders --port 8545 --count 4   # more accounts

The node is plain anvil with ape's test mnemonic (anvil's default), so ape's test accounts are
its unlocked dev accounts; ape connects to it through APE_FOUNDRY_HOST instead of starting its
own. `seed` runs the crash demo's setup (kappa_ops.demo.CrashDemo: deployment through
kappa_ops.deployer, series over three expiries, market makers, directional traders and the
insurance fund), lets test account 3 (the bot's signer in `make keeper`) hedge the market
makers, and records the deployment in deployments/base-local-<chain-id>.json; `crash` moves
the three mock feeds as the demo's crash does and the demo's arbitrageur brings the pools to the new
price. Both write the vol feeder's source (`.keeper/vol-source.json`, base-local.yaml's
`vol_feed`): the demo's vol path at the depth of the crash (ATM vol up and the skew steeper as
the price falls), which the bot then posts to the VolOracle. Local chains only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from kappa_ops.config import ROOT

NETWORK = "base:local:foundry"
WAD = 10**18


def anvil_command(port: int) -> list[str]:
    """anvil as ape-foundry starts it for base:local (zero fees), without step tracing. Every
    block's transactions and logs are kept (no `--transaction-block-keeper`): the keeper
    backfills its mirror from the deployment block with eth_getLogs."""
    binary = shutil.which("anvil", path=str(ROOT / "node_modules" / ".bin")) or "anvil"
    return [binary, "--port", str(port), "--block-base-fee-per-gas", "0", "--gas-price", "0"]


@contextmanager
def connected(port: int) -> Iterator[Any]:
    """ape connected to the anvil node on `port` (never starting one)."""
    os.environ["APE_FOUNDRY_HOST"] = f"http://127.0.0.1:{port}"
    from ape import networks
    from ape.logging import logger

    logger.set_level("ERROR")
    with networks.parse_network_choice(NETWORK) as provider:
        yield provider


def node_running(port: int) -> bool:
    """An RPC node answers on localhost:`port`."""
    import json
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}", body.encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return "result" in json.loads(resp.read())
    except OSError:
        return False


def start_node(port: int, log_file: Path) -> int:
    """anvil in the background (its own session, output to `log_file`); returns its pid."""
    import subprocess
    import time

    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        proc = subprocess.Popen(anvil_command(port), stdout=out, stderr=out, start_new_session=True)
    for _ in range(100):
        if node_running(port):
            return proc.pid
        time.sleep(0.1)
    raise RuntimeError(f"anvil did not answer on port {port}; see {log_file}")


def seeded(records_dir: Path) -> bool:
    """The recorded engine has code and listed series (a seeded demo market)."""
    from ape import chain, networks

    from kappa_ops.deployer import record_path
    from kappa_ops.plan import Network

    ecosystem, network, _ = NETWORK.split(":")
    where = Network(ecosystem=ecosystem, name=network, is_local=True)
    record = record_path(where, int(chain.chain_id), records_dir)
    if not record.is_file():
        return False
    import json

    engine = json.loads(record.read_text()).get("contracts", {}).get("engine", {})
    address = engine.get("address") if isinstance(engine, dict) else None
    return bool(address) and bool(bytes(networks.provider.get_code(address)))


def demo(records_dir: Path, short: bool = True, log: Any = print) -> Any:
    """The crash demo's market, set up (deployed and seeded; idempotent deployment)."""
    from kappa_ops.demo import CrashDemo
    from kappa_ops.scenario import ScenarioSettings

    settings = ScenarioSettings.short() if short else ScenarioSettings()
    d = CrashDemo(settings, log=log, records_dir=records_dir, charts=False)
    d.setup()
    return d


def attach(records_dir: Path, log: Any = print) -> Any:
    """The demo's handles on an existing deployment, without seeding anything."""
    from kappa_ops.chain import ChainReader
    from kappa_ops.config import load_config
    from kappa_ops.demo import CrashDemo
    from kappa_ops.deployer import deploy
    from kappa_ops.scenario import ScenarioSettings

    d = CrashDemo(ScenarioSettings.short(), log=log, records_dir=records_dir, charts=False)
    config = load_config(ROOT / "deploy" / "networks" / "base-local.yaml")
    d.config = config
    d.dep = deploy(config, records_dir=records_dir, log=lambda _line: None)
    d.engine, d.oracle, d.vol = d.dep["engine"], d.dep["oracle"], d.dep["vol_oracle"]
    d.order_book = d.dep["order_book"]  # orders are signed for it (EIP-712 domain)
    d.usd, d.weth, d.liquidator = d.dep["usd"], d.dep["weth"], d.dep["liquidator"]
    d.pools = [d.dep[p.name] for p in config.pools]
    d.fees = [p.fee_bps for p in config.pools]
    d.feeds = [d.dep[f"feed_{x}"] for x in config.mocks.feed_decimals]  # type: ignore[union-attr]
    d.feed_decimals = list(config.mocks.feed_decimals)  # type: ignore[union-attr]
    d.usd_scale = 10**config.mocks.cash.decimals  # type: ignore[union-attr]
    d.reader = ChainReader(d.engine, d.oracle, d.vol, d.liquidator)
    d.params = d.reader.params
    # The listed series, in listing order (the demo lists calls, then puts, per expiry).
    from ape import chain

    listed = list(d.engine.SeriesListed.range(0, chain.blocks.head.number + 1))
    d.series = [(int(x.expiry), int(x.strike) // WAD, bool(x.is_call)) for x in listed]
    d.series_ids = [int(x.series_id) for x in listed]
    d.expiries = sorted({e for e, _, _ in d.series})
    d.reader.track_expiries(d.expiries)
    return d


def move_feeds(d: Any, spot: float) -> int:
    """Every mock feed to `spot` (spread as in the demo), in one pipelined batch; returns the
    block of the last update."""
    spread = d.s.feed_spread
    moves = (1 - spread, 1.0, 1 + spread)
    receipts = d.send_batch(
        [
            ("feed_update", feed.set_answer, (round(spot * m * 10**dec),), d.keeper)
            for feed, dec, m in zip(d.feeds, d.feed_decimals, moves, strict=False)
        ]
    )
    return max(int(r.block_number) for r in receipts)


VOL_SOURCE = ROOT / ".keeper" / "vol-source.json"


def write_vol_source(d: Any, spot: float, path: Path = VOL_SOURCE) -> None:
    """The demo's vol path at the crash depth of `spot` (kappa_ops.scenario.vol_path's shape:
    the bump grows with the fall, to `vol_peak_add` at the scenario's full crash)."""
    import time

    from keeper.runtime.volfeed import write_source

    s = d.s
    bump = min(max(1.0 - spot / s.spot, 0.0) / s.crash, 1.0)
    skew = s.skew + (s.skew_peak - s.skew) * bump
    atm = [a + s.vol_peak_add * bump for a in s.atm_vol]
    write_source(path, [(e, a, skew) for e, a in zip(d.expiries, atm, strict=False)], time.time())


def add_traders(d: Any, first: int, count: int, seed: int) -> list[str]:
    """`count` new directional traders (keys derived from index `first` on), seeded with fills
    against the market makers as the demo seeds its own; returns their addresses."""
    from kappa_ops.demo import Trader

    d.traders = [Trader.derive(first + i) for i in range(count)]
    d.s = replace(d.s, traders=count, near_limit=max(count // 2, 1), seed=seed)
    d.seed_traders()
    return [t.address for t in d.traders]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m keeper.runtime.localnet")
    p.add_argument("command", choices=("up", "node", "seed", "crash", "traders"))
    p.add_argument("--port", type=int, default=int(os.environ.get("KAPPA_KEEPER_PORT", 8545)))
    p.add_argument("--records-dir", type=Path, default=ROOT / "deployments")
    p.add_argument("--spot", type=float, default=None, help="crash: the new feed answer (USD)")
    p.add_argument("--count", type=int, default=4, help="traders: how many")
    p.add_argument("--first", type=int, default=1000, help="traders: first key index")
    p.add_argument("--full", action="store_true", help="seed: the full demo market")
    a = p.parse_args(argv)
    if a.command == "node":
        os.execv(anvil_command(a.port)[0], anvil_command(a.port))
    if a.command == "up":
        if node_running(a.port):
            print(f"a node answers on port {a.port}: using it")
        else:
            pid = start_node(a.port, ROOT / ".keeper" / "anvil.log")
            print(f"anvil started on port {a.port} (pid {pid}, log .keeper/anvil.log)")
    with connected(a.port):
        if a.command == "up" and seeded(a.records_dir):
            print("the demo market is already deployed and seeded")
        elif a.command in ("up", "seed"):
            # The setup makes the bot's signer (`make keeper`: test account 3) the market
            # makers' hedging operator and a VolOracle feeder.
            d = demo(a.records_dir, short=not a.full)
            write_vol_source(d, d.s.spot)
            print(f"seeded {len(d.accounts)} accounts; engine {d.engine.address}")
        elif a.command == "crash":
            if a.spot is None or not a.spot > 0:
                print("kappa localnet: crash needs --spot > 0", file=sys.stderr)
                return 2
            d = attach(a.records_dir, log=lambda _line: None)
            move_feeds(d, a.spot)
            d.arbitrage(a.spot)  # the demo's arbitrageur brings the pools to the new price
            write_vol_source(d, a.spot)
            print(f"feeds and pools moved to {a.spot}; vol source {VOL_SOURCE}")
        else:
            d = attach(a.records_dir, log=lambda _line: None)
            for addr in add_traders(d, a.first, a.count, seed=a.first):
                print(addr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
