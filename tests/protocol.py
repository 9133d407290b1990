"""The test harness (tests/deployment.py) on titanoboa, for unit, property and differential tests
and benchmarks.

`deploy()` returns a `Protocol` with tokens, feeds, the oracle layer, the risk calculator, the
margin engine and the Liquidator, deployed and wired by tests/deployment.py (the same wiring,
`Protocol` and `Maker` the revm fuzz suite uses). `Maker` signs EIP-712 orders with
eth_account, an implementation independent of ours, so these tests also check the engine's
digest (`Maker.new(seed, fast=True)` is the fuzz suite's fast signer); its orders' default
deadline is a day after titanoboa's block time.
"""

from __future__ import annotations

from typing import Any

import boa

from tests import deployment
from tests.conftest import load
from tests.deployment import (
    DAY,
    GRID,
    IM,
    LIQUIDATION,
    MM,
    REF_VOL,
    START,
    WAD,
    YEAR,
    Protocol,
    as_tuple,
    position_ids,
)

__all__ = [
    "DAY",
    "GRID",
    "IM",
    "LIQUIDATION",
    "MM",
    "REF_VOL",
    "START",
    "WAD",
    "YEAR",
    "Maker",
    "Protocol",
    "as_tuple",
    "position_ids",
]


class Maker(deployment.Maker):
    """tests/deployment.Maker on titanoboa: checksummed addresses, titanoboa's clock."""

    checksum = True

    @staticmethod
    def now() -> int:  # type: ignore[override]
        return int(boa.env.timestamp)


class _BoaDeployer:
    """tests/deployment.Deployer over titanoboa's current environment."""

    @property
    def deployer(self) -> str:
        return boa.env.eoa

    def deploy(self, path: str, *args: Any) -> Any:
        return load(path, *args)

    def time_travel(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    def new_account(self, label: str) -> str:
        return boa.env.generate_address(label)


def deploy(spot: float = 3000.0, usd: Any = None) -> Protocol:
    """Deploy and wire the protocol at block time START; the deployer holds every role (and
    owns the Liquidator, which holds the engine's liquidator role). `usd` replaces the cash
    token (a test may bring its own, e.g. a hostile one; `fund` uses its decimals)."""
    boa.env.time_travel(seconds=max(START - boa.env.timestamp, 0))
    return deployment.deploy_protocol(_BoaDeployer(), spot, usd)


def deploy_venues(p: Protocol, spot: float = 3000.0) -> tuple[Any, list[Any]]:
    """Three USD/WETH pools, a Router, and the engine wired to them (tests/deployment.py),
    also kept on `p`. Returns (router, pools)."""
    return deployment.add_venues(_BoaDeployer(), p, spot)


def expiry_in(days: int) -> int:
    """An expiry on the engine's grid (08:00 UTC) `days` days after START."""
    return START + days * DAY


def short_puts(p: Protocol, put: int, name: str = "victim") -> str:
    """An account short 10 puts (`put`, bought by a maker at 32 USD) against 3,000 USD of cash:
    healthy at spot 3,000, liquidatable by 2,700, and far below its health floor (every put at
    its strike) throughout."""
    maker, account = Maker.new("mm"), boa.env.generate_address(name)
    p.fund(maker.address, usd=100_000)
    p.fund(account, usd=3_000)
    order = maker.order(put, True, 10 * WAD, 32 * WAD)
    p.engine.fill(as_tuple(order), maker.sign(p, order), 10 * WAD, account, sender=account)
    return account
