"""The Silverback bot: `silverback run keeper.runtime.bot:bot --network <eco:net:provider>
--account <alias>` (docs/keeper.md).

Settings: the `keeper:` key of deploy/networks/<ecosystem>-<network>.yaml (or the file in
KAPPA_KEEPER_CONFIG), validated here, at import, with a one-line error. Contracts: the
deployment record deployments/<chain-id>.json (or KAPPA_RECORDS_DIR). To use a node that is
already running instead of one ape-foundry starts, point ape at it (APE_FOUNDRY_HOST=
http://127.0.0.1:8545, or `foundry: host:` in ape-config.yaml).

The handlers are small: the startup task backfills the mirror, the block task runs one
`Keeper.on_block` (which processes everything up to the head, so blocks the runner delivers
late or concurrently are harmless: the keeper's lock serialises them and a later one finds
nothing left to do), the shutdown task writes the checkpoint. Each block task returns its
metrics, which Silverback records.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ape import chain
from silverback import SilverbackBot

from kappa_ops.config import ROOT, config_path
from keeper.runtime.chain import ChainIOError, load_deployment
from keeper.runtime.service import Keeper, build_keeper, log_line
from keeper.runtime.settings import KeeperConfigError, load_keeper

bot = SilverbackBot()

_network = bot.provider.network
_config = Path(
    os.environ.get("KAPPA_KEEPER_CONFIG")
    or config_path(_network.ecosystem.name, _network.name.removesuffix("-fork"))
)
RECORDS = Path(os.environ.get("KAPPA_RECORDS_DIR") or ROOT / "deployments")
try:
    SETTINGS = load_keeper(_config)
    DEPLOYMENT = load_deployment(
        RECORDS,
        _network.ecosystem.name,
        _network.name.removesuffix("-fork"),
        int(bot.provider.chain_id),
    )
except (KeeperConfigError, ChainIOError) as _exc:
    sys.stderr.write(f"kappa keeper: {_exc}\n")
    sys.exit(2)
_holder: dict[str, Keeper] = {}


def keeper() -> Keeper:
    if "keeper" not in _holder:  # a worker that joined after the startup task (distributed)
        _start()
    return _holder["keeper"]


@bot.on_startup()
def startup(_state: Any) -> None:
    _start()


def _start() -> None:
    if "keeper" in _holder:
        return
    k = build_keeper(bot, SETTINGS, ROOT, DEPLOYMENT)
    _holder["keeper"] = k
    log_line(
        "startup",
        config=str(_config),
        signer=k.sender.address if k.sender else None,
        dry_run=k.dry_run,
        roles=SETTINGS.roles.model_dump(),
        checkpoint=str(k.checkpoint_file),
        engine=str(k.engine.address),
    )
    k.catch_up()


@bot.on_(chain.blocks)
def on_block(block: Any) -> dict[str, float]:
    return keeper().on_block(int(block.number))


@bot.on_shutdown()
def shutdown() -> None:
    k = _holder.get("keeper")
    if k is not None:
        with k.lock:
            k.write_checkpoint()
        log_line("shutdown", block=k.mirror.last_block)
