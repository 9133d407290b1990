"""Deploy and wire Kappa: `ape run deploy --network <ecosystem:network:provider>`.

Reads `deploy/networks/<ecosystem>-<network>.yaml` (or `--config FILE`), deploys what
`deployments/<chain-id>.json` does not already hold (a recorded contract counts only if its code
is at the recorded address), sends the wiring calls whose checks do not hold yet, records every
address and prints a summary table. Re-running sends nothing.

    ape run deploy --network base:local:foundry          # local anvil (mocks, pools, liquidity)
    ape run deploy --network ethereum:local:test         # ape's embedded eth-tester chain
    ape run deploy --network base:sepolia:node --dry-run # what would be sent, nothing sent

`--dry-run` (or KAPPA_DRY_RUN=1) prints the plan without sending anything. Mock tokens and
feeds are refused on public networks; public networks sign with the ape keystore account named
in the config (deployer.alias, e.g. `${KAPPA_DEPLOYER}`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from ape.cli import ConnectedProviderCommand
from ape.logging import logger

from kappa_ops.config import ConfigError
from kappa_ops.deployer import DEPLOYMENTS_DIR, DeployError, deploy_from_files
from kappa_ops.plan import PlanError


@click.command(cls=ConnectedProviderCommand, short_help="Deploy and wire Kappa")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan; send nothing (also KAPPA_DRY_RUN=1).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: deploy/networks/<ecosystem>-<network>.yaml).",
)
@click.option(
    "--records-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEPLOYMENTS_DIR,
    show_default=True,
    help="Where the deployment record <chain-id>.json is read and written.",
)
def cli(dry_run: bool, config_file: Path | None, records_dir: Path) -> None:
    logger.set_level("WARNING")
    dry_run = dry_run or os.environ.get("KAPPA_DRY_RUN", "") not in ("", "0", "false")
    try:
        deploy_from_files(config_file, dry_run=dry_run, records_dir=records_dir)
    except (ConfigError, PlanError, DeployError) as exc:
        click.echo(f"kappa deploy: {exc}", err=True)
        sys.exit(1)
