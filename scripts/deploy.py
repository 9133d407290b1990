"""Deploy and wire Kappa: `ape run deploy --network <ecosystem:network:provider>`.

Reads `deploy/networks/<ecosystem>-<network>.yaml` (or `--config FILE`), deploys what
`deployments/<ecosystem>-<network>-<chain-id>.json` does not already hold (a recorded contract
counts only if its code is at the recorded address), sends the wiring calls whose checks do not
hold yet and the one-shot calls not recorded as sent, records every transaction and prints a
summary table. Re-running sends nothing; a rerun after an interruption sends what is missing.

    ape run deploy --network base:local:foundry            # local anvil (mocks, pools, liquidity)
    ape run deploy --network base:sepolia:node --dry-run   # simulated on an anvil fork: gas, cost
    ape run deploy --network base:sepolia:node --account ops
    ape run deploy --network base:sepolia:node --check     # what differs from the config
    ape run deploy --network base:sepolia:node --apply     # ... and send the fixes

Signing: `--account` (ape's option: an alias or TEST::<n>) overrides the config's deployer. A
keystore account signs without a prompt when APE_ACCOUNTS_<alias>_PASSPHRASE is set, or with
`--yes` (the passphrase is then asked once); without either, ape asks before every transaction,
and without a terminal the deploy stops at once with a one-line message.

`--dry-run` (or KAPPA_DRY_RUN=1) sends nothing to the network. `--check` exits with status 3
when the deployment differs from the config. Logging: ape's `-v/--verbosity` (DEBUG shows more).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from ape.cli import ConnectedProviderCommand, account_option
from ape.logging import logger

from kappa_ops.config import ConfigError
from kappa_ops.deployer import DEPLOYMENTS_DIR, DeployError, deploy_from_files
from kappa_ops.plan import PlanError

DRIFT_EXIT = 3


@click.command(cls=ConnectedProviderCommand, short_help="Deploy and wire Kappa")
@account_option(prompt=False)
@click.option("--dry-run", is_flag=True, help="Simulate (fork or snapshot); send nothing.")
@click.option("--check", is_flag=True, help="Compare the deployment with the config; send nothing.")
@click.option("--apply", "apply_", is_flag=True, help="Deploy, then send the config's fixes.")
@click.option("--yes", is_flag=True, help="Sign every transaction without asking.")
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
    help="Where the record <ecosystem>-<network>-<chain-id>.json is read and written.",
)
def cli(
    account: object,
    dry_run: bool,
    check: bool,
    apply_: bool,
    yes: bool,
    config_file: Path | None,
    records_dir: Path,
) -> None:
    dry_run = dry_run or os.environ.get("KAPPA_DRY_RUN", "") not in ("", "0", "false")
    chosen = [
        name for name, on in (("--dry-run", dry_run), ("--check", check), ("--apply", apply_)) if on
    ]
    if len(chosen) > 1:
        click.echo(f"kappa deploy: {' and '.join(chosen)} exclude each other", err=True)
        sys.exit(2)
    mode = {"--dry-run": "dry-run", "--check": "check", "--apply": "apply"}.get(
        chosen[0] if chosen else "", "deploy"
    )
    try:
        result = deploy_from_files(
            config_file, mode=mode, records_dir=records_dir, account=account or None, yes=yes
        )
    except (ConfigError, PlanError, DeployError) as exc:
        logger.error(f"kappa deploy: {exc}")
        sys.exit(1)
    except (click.exceptions.Abort, EOFError, KeyboardInterrupt):
        logger.error("kappa deploy: interrupted; rerun the same command to resume")
        sys.exit(130)
    if mode == "check" and (result.drift or result.plan.to_deploy):
        sys.exit(DRIFT_EXIT)
