"""Deploy the whole protocol on titanoboa for tests and benchmarks: one place for the wiring.

`deploy()` returns a `Protocol` with tokens, feeds, the oracle layer, the risk calculator and the
margin engine, parameterised like a realistic ETH options market (USD cash with 6 decimals,
WETH with 18, three price feeds at 3,000, a fresh vol surface).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boa

from tests.conftest import load

WAD = 10**18
DAY = 86_400
START = 1_800_000_000 - (1_800_000_000 % DAY) + 8 * 3600  # 08:00 UTC on a day

# Risk parameters: (k, v, a, conf, haircut) per mode; grid (n, horizon, u_min, u_max, tau_ref,
# tau_floor, v_max).
MM = (3 * WAD, WAD // 4, WAD // 100, WAD // 10, WAD // 10)
IM = (4 * WAD, WAD * 3 // 10, WAD * 2 // 100, WAD // 5, WAD * 15 // 100)
GRID = (3, DAY, WAD // 20, WAD // 2, WAD // 12, WAD // 365, WAD)
REF_VOL = WAD * 8 // 10
# Liquidator: discount 2% -> 10% over 30 minutes, half the discount to the insurance fund, capped
# bids restore H_MM to 10 USD, accounts worth at most 100 USD go whole.
LIQUIDATION = (WAD * 2 // 100, WAD // 10, 1800, WAD // 2, 10 * WAD, 100 * WAD)


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

    def fund(self, account: str, usd: float = 0, weth: float = 0) -> None:
        """Mint tokens to `account` and deposit them into its engine account."""
        with boa.env.prank(account):
            if usd:
                amount = int(usd * 10**6)
                self.usd.mint(account, amount)
                self.usd.approve(self.engine.address, amount)
                self.engine.deposit(self.usd.address, amount)
            if weth:
                amount = int(weth * WAD)
                self.weth.mint(account, amount)
                self.weth.approve(self.engine.address, amount)
                self.engine.deposit(self.weth.address, amount)


def deploy(spot: float = 3000.0, usd: Any = None) -> Protocol:
    """Deploy and wire the protocol at block time START; the deployer holds every role (and
    owns the Liquidator, which holds the engine's liquidator role)."""
    boa.env.time_travel(seconds=max(START - boa.env.timestamp, 0))
    admin = boa.env.eoa
    if usd is None:  # a test may bring its own 6-decimal cash token (e.g. a hostile one)
        usd = load("contracts/mocks/MockERC20.vy", "USD Coin", "USDC", 6)
    weth = load("contracts/mocks/MockERC20.vy", "Wrapped Ether", "WETH", 18)
    feeds = [
        load("contracts/mocks/MockAggregatorV3.vy", d, "ETH / USD", int(spot * 10**d))
        for d in (8, 18, 6)
    ]
    sequencer_feed = load("contracts/mocks/MockSequencerFeed.vy", False)
    boa.env.time_travel(seconds=7200)  # the sequencer has been up past its grace period
    for feed in feeds:
        feed.set_answer(feed.latestRoundData()[1])
    oracle = load(
        "contracts/OracleAggregator.vy",
        [f.address for f in feeds],
        [3600] * 3,
        2,
        sequencer_feed.address,
        3600,
        WAD // 100,
    )
    vol = load("contracts/VolOracle.vy", WAD // 20, 5 * WAD, WAD // 2, 2 * WAD, 6 * 3600, WAD // 2)
    vol.add_feeder(admin)
    calculator = load("contracts/RiskCalculator.vy")
    engine = load(
        "contracts/MarginEngine.vy",
        calculator.address,
        oracle.address,
        vol.address,
        usd.address,
        weth.address,
        IM,
        MM,
        GRID,
        REF_VOL,
    )
    liquidator = load("contracts/Liquidator.vy", engine.address, *LIQUIDATION)
    engine.set_role("liquidator", liquidator.address)
    return Protocol(
        usd, weth, feeds, sequencer_feed, oracle, vol, calculator, engine, liquidator, admin
    )


def expiry_in(days: int) -> int:
    """An expiry on the engine's grid (08:00 UTC) `days` days after START."""
    return START + days * DAY


# ---------------------------------------------------------------------------------------------
# Signed orders (EIP-712, domain "Kappa" / "1", verifying contract = the engine)
# ---------------------------------------------------------------------------------------------

ORDER_TYPES = {
    "Order": [
        {"name": "maker", "type": "address"},
        {"name": "series_id", "type": "uint256"},
        {"name": "is_buy", "type": "bool"},
        {"name": "size", "type": "uint256"},
        {"name": "price", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}


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
        from eth_account.messages import encode_typed_data

        domain = {
            "name": "Kappa",
            "version": "1",
            "chainId": boa.env.evm.patch.chain_id,
            "verifyingContract": engine.address,
        }
        return encode_typed_data(domain, ORDER_TYPES, order)

    def digest(self, engine: Any, order: dict[str, Any]) -> bytes:
        """The order hash the engine tracks fills and cancels by (computed off chain)."""
        from eth_utils import keccak

        message = self.message(engine, order)
        return keccak(b"\x19\x01" + message.header + message.body)

    def sign(self, engine: Any, order: dict[str, Any]) -> bytes:
        from eth_account import Account

        return bytes(Account.sign_message(self.message(engine, order), self.key).signature)


def as_tuple(order: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(order[f["name"]] for f in ORDER_TYPES["Order"])


def deploy_venues(p: Protocol, spot: float = 3000.0) -> tuple[Any, list[Any]]:
    """Three USD/WETH pools of different depth and fee at `spot`, a Router, and the engine wired
    to it (role "router", each pool listed as a venue). Returns (router, pools)."""
    lp = boa.env.generate_address("liquidity provider")
    pools = []
    for fee, depth in ((5, 200), (30, 100), (100, 50)):
        pool = load(
            "contracts/venues/ConstantProductPool.vy",
            p.weth.address,
            p.usd.address,
            fee,
            f"LP {fee}",
            f"LP{fee}",
        )
        weth, usd = depth * WAD, int(depth * spot * 10**6)
        with boa.env.prank(lp):
            p.weth.mint(lp, weth)
            p.usd.mint(lp, usd)
            p.weth.approve(pool.address, weth)
            p.usd.approve(pool.address, usd)
            pool.add_liquidity(weth, usd, 0, lp)
        pools.append(pool)
    router = load("contracts/Router.vy")
    p.engine.set_role("router", router.address)
    for pool in pools:
        p.engine.set_role("venue", pool.address)
    return router, pools


def position_ids(engine: Any, account: str) -> tuple[list[int], list[int]]:
    """(series ids, signed sizes) of an account, unpacked from `packed_positions`."""
    ids, sizes = [], []
    for packed in engine.packed_positions(account):
        low = packed & (2**128 - 1)
        ids.append(packed >> 128)
        sizes.append(low - 2**128 if low >= 2**127 else low)
    return ids, sizes
