"""The whole protocol on titanoboa, for unit, property and differential tests and benchmarks.

`deploy()` returns a `Protocol` with tokens, feeds, the oracle layer, the risk calculator, the
margin engine and the Liquidator, deployed and wired by tests/deployment.py (the same wiring the
revm fuzz suite uses); `Maker` signs EIP-712 orders with eth_account, an implementation
independent of ours, so these tests also check the engine's digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boa

from keeper import orders, series
from tests import deployment
from tests.conftest import load
from tests.deployment import DAY, GRID, IM, LIQUIDATION, MM, REF_VOL, START, WAD

__all__ = ["DAY", "GRID", "IM", "LIQUIDATION", "MM", "REF_VOL", "START", "WAD"]


@dataclass
class Protocol:
    usd: Any
    weth: Any
    feeds: list[Any]
    sequencer_feed: Any
    oracle: Any
    vol: Any
    calculator: Any
    engine: Any
    liquidator: Any
    admin: str

    def set_spot(self, price: float) -> None:
        """Move every price feed to `price` (USD per ETH)."""
        for feed in self.feeds:
            decimals = feed.decimals()
            feed.set_answer(round(price * 10**decimals))

    def settlement_hints(self, expiry: int, extra_feeds: list[Any] | None = None) -> list[int]:
        """Round-id hints for `engine.settle_expiry(expiry, hints)` (tests/deployment.py);
        `extra_feeds` are sources a test added to the oracle beyond `feeds`."""
        return deployment.settlement_hints(self.oracle, self.feeds + (extra_feeds or []), expiry)

    def settle_expiry(self, expiry: int) -> None:
        """Record the settlement price of `expiry` with the hints from the feeds' history."""
        self.engine.settle_expiry(expiry, self.settlement_hints(expiry))

    def fund(self, account: str, usd: float = 0, weth: float = 0) -> None:
        """Mint tokens to `account` and deposit them into its engine account."""
        with boa.env.prank(account):
            if usd:
                # The cash token's own decimals (6 for the default USDC mock); Decimal keeps a
                # fractional amount exact at 18 decimals.
                amount = int(Decimal(str(usd)) * 10 ** self.usd.decimals())
                self.usd.mint(account, amount)
                self.usd.approve(self.engine.address, amount)
                self.engine.deposit(self.usd.address, amount)
            if weth:
                amount = int(weth * WAD)
                self.weth.mint(account, amount)
                self.weth.approve(self.engine.address, amount)
                self.engine.deposit(self.weth.address, amount)

    def price_band(self, series_id: int, account: str) -> tuple[int, int]:
        """The series' fair-price band (RiskCalculator.price_band) at the market the engine
        reads for `account`: the unit prices a fill below initial margin, or by an operator,
        must lie within."""
        _, market = self.engine.risk_inputs(account)
        expiry = self.engine.series(series_id)[0]
        word = series.pack_position(series_id, WAD)
        entry = self.vol.packed_entries([expiry])[1][0]
        _, mm, grid, _, _ = self.engine.risk_params()
        return self.calculator.price_band((word, entry), market, mm, grid)

    def health_floor(self, account: str, is_im: bool = True) -> int:
        """The RiskCalculator's health floor of `account` as the engine reads it (wad)."""
        portfolio, market = self.engine.risk_inputs(account)
        im, mm, grid, _, _ = self.engine.risk_params()
        return self.calculator.health_floor(portfolio, market, im if is_im else mm, grid)


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
    contracts = deployment.deploy_contracts(_BoaDeployer(), spot, usd)
    return Protocol(admin=boa.env.eoa, **contracts)


def expiry_in(days: int) -> int:
    """An expiry on the engine's grid (08:00 UTC) `days` days after START."""
    return START + days * DAY


# ---------------------------------------------------------------------------------------------
# Signed orders (EIP-712, domain "Kappa" / "1", verifying contract = the engine)
# ---------------------------------------------------------------------------------------------


@dataclass
class Maker:
    """An account with a private key, so it can sign orders (boa needs no key to send)."""

    key: bytes
    address: str

    @classmethod
    def new(cls, seed: str) -> Maker:
        from eth_account import Account

        acct = Account.from_key(boa.eval(f"keccak256('{seed}')"))
        return cls(bytes(acct.key), acct.address)

    def order(
        self,
        series_id: int,
        is_buy: bool,
        size: int,
        price: int,
        nonce: int = 0,
        deadline: int | None = None,
    ) -> dict[str, Any]:
        return {
            "maker": self.address,
            "series_id": series_id,
            "is_buy": is_buy,
            "size": size,
            "price": price,
            "nonce": nonce,
            "deadline": boa.env.timestamp + DAY if deadline is None else deadline,
        }

    def message(self, engine: Any, order: dict[str, Any]) -> Any:
        """The EIP-712 message of `order` for `engine` (domain "Kappa" / "1")."""
        return orders.typed_message(boa.env.evm.patch.chain_id, engine.address, order)

    def digest(self, engine: Any, order: dict[str, Any]) -> bytes:
        """The order hash the engine tracks fills and cancels by (computed off chain)."""
        return orders.digest(boa.env.evm.patch.chain_id, engine.address, order)

    def sign(self, engine: Any, order: dict[str, Any]) -> bytes:
        return orders.sign(self.key, boa.env.evm.patch.chain_id, engine.address, order)


as_tuple = orders.as_tuple


def deploy_venues(p: Protocol, spot: float = 3000.0) -> tuple[Any, list[Any]]:
    """Three USD/WETH pools, a Router, and the engine wired to them (tests/deployment.py).
    Returns (router, pools)."""
    return deployment.deploy_venues(_BoaDeployer(), p.engine, p.weth, p.usd, spot)


def position_ids(engine: Any, account: str) -> tuple[list[int], list[int]]:
    """(series ids, signed sizes) of an account, from `packed_positions`."""
    return deployment.unpack_positions(engine.packed_positions(account))


def short_puts(p: Protocol, put: int, name: str = "victim") -> str:
    """An account short 10 puts (`put`, bought by a maker at 32 USD) against 3,000 USD of cash:
    healthy at spot 3,000, liquidatable by 2,700, and far below its health floor (every put at
    its strike) throughout."""
    maker, account = Maker.new("mm"), boa.env.generate_address(name)
    p.fund(maker.address, usd=100_000)
    p.fund(account, usd=3_000)
    order = maker.order(put, True, 10 * WAD, 32 * WAD)
    with boa.env.prank(account):
        p.engine.fill(as_tuple(order), maker.sign(p.engine, order), 10 * WAD, account)
    return account
