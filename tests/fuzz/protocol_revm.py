"""The test harness (tests/deployment.py) on revm (tests/harness/revm.py), for the fuzz suite and
bench.

The same `Protocol`, `Maker` and wiring as tests/protocol.py on titanoboa (so a failure found
here reproduces there with the same accounts and calls); only the EVM differs:

    chain = Chain()
    p = deploy(chain)                     # tokens, 3 feeds, sequencer, oracle, vol, engine
    router, pools = deploy_venues(p)      # 3 ConstantProductPools + Router, listed as venues
    maker = Maker.new("alice", fast=True) # an EOA with a key, signs EIP-712 orders (fast)
    # (p.liquidator: the Liquidator, wired with the engine's "liquidator" role)
    order = maker.order(series_id, is_buy=True, size=WAD, price=100 * WAD, deadline=...)
    p.engine.fill(as_tuple(order), maker.sign(p, order), WAD, taker, sender=taker)

revm has no implicit clock here, so an order needs its deadline; addresses are lowercase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests import deployment
from tests.deployment import Maker, as_tuple, position_ids
from tests.harness.revm import Chain, Contract

__all__ = ["USD_SCALE", "Maker", "Protocol", "as_tuple", "deploy", "deploy_venues", "position_ids"]

USD_SCALE = 10**12  # USD has 6 decimals: token units -> wad


@dataclass(kw_only=True)
class Protocol(deployment.Protocol):
    """tests/deployment.Protocol on a revm `Chain` (kept as `chain`)."""

    chain: Chain


class _RevmDeployer:
    """tests/deployment.Deployer over a revm Chain (labelled accounts get gas money)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.deployer = chain.deployer

    def deploy(self, path: str, *args: Any) -> Contract:
        return self.chain.deploy(path, *args)

    def time_travel(self, seconds: int) -> None:
        self.chain.time_travel(seconds=seconds)

    def new_account(self, label: str) -> str:
        return self.chain.new_account(label, 10**21)


def deploy(chain: Chain, spot: float = 3000.0) -> Protocol:
    """Deploy and wire the protocol (tests/deployment.py); the deployer holds every role.

    The chain should stand at START (a fresh `Chain()` does); the deployment ends two hours
    later, past the sequencer's grace period, with every feed fresh."""
    base = deployment.deploy_protocol(_RevmDeployer(chain), spot)
    return Protocol(chain=chain, **vars(base))


def deploy_venues(p: Protocol, spot: float = 3000.0) -> tuple[Contract, list[Contract]]:
    """Three USD/WETH pools, a Router, and the engine wired to them (tests/deployment.py);
    also kept on `p` (`p.router`, `p.pools`). Returns (router, pools)."""
    return deployment.add_venues(_RevmDeployer(p.chain), p, spot)
