"""`make demo`: a market crash on a local L2 node, handled end to end by the keeper.

    ape run demo --network base:local:foundry          # what `make demo` runs
    ape run demo --network base:local:foundry --short  # a small version (a dozen accounts)

Deploys with the deploy script's code (kappa_ops.deployer), lists series over several expiries,
seeds market makers and directional traders, starts the keeper bot (`silverback run
keeper.runtime.bot:bot`) as its own process on the same node, then plays the crash: the oracle
falls ~35% over 60 blocks with a vol spike and partly recovers, while the bot mirrors every
account, liquidates (Liquidator auctions), hedges the market makers' delta across the pools and
feeds the vol path to the VolOracle. Writes reports/demo.json and reports/demo.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from kappa_ops.anvil import lean_anvil
from kappa_ops.config import ConfigError
from kappa_ops.demo import KEEPER_DIR, REPORTS, CrashDemo
from kappa_ops.deployer import DEPLOYMENTS_DIR, DeployError
from kappa_ops.keeper_bot import KeeperBotError
from kappa_ops.plan import PlanError
from kappa_ops.scenario import ScenarioSettings

# Before ape starts the node: no per-opcode traces (see kappa_ops/anvil.py).
lean_anvil()


@click.command(cls=ConnectedProviderCommand, short_help="Kappa crash demo")
@click.option("--short", is_flag=True, help="A small scenario (the integration test's).")
@click.option("--no-charts", is_flag=True, help="Skip the PNG charts.")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=REPORTS,
    show_default=True,
    help="Where demo.json and demo.png go.",
)
@click.option(
    "--records-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEPLOYMENTS_DIR,
    show_default=True,
    help="Where the deployment record <chain-id>.json goes.",
)
@click.option(
    "--keeper-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=KEEPER_DIR,
    show_default=True,
    help="The keeper bot's settings, log, checkpoint and vol source.",
)
def cli(
    short: bool, no_charts: bool, report_dir: Path, records_dir: Path, keeper_dir: Path
) -> None:
    logger.set_level("WARNING")
    settings = ScenarioSettings.short() if short else ScenarioSettings()
    try:
        CrashDemo(
            settings,
            charts=not no_charts,
            report_dir=report_dir,
            records_dir=records_dir,
            keeper_dir=keeper_dir,
        ).run()
    except (ConfigError, PlanError, DeployError, KeeperBotError) as exc:
        click.echo(f"kappa demo: {exc}", err=True)
        sys.exit(1)
