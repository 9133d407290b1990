"""The protocol as the tests deploy it, for any EVM harness: one place for parameters and wiring.

Titanoboa (tests/protocol.py: unit, property and differential tests, benches) and revm
(tests/fuzz/protocol_revm.py: the stateful fuzz suite) both deploy through `deploy_contracts`
and `deploy_venues`, so a failure the fuzzer finds reproduces on titanoboa with the same
contracts, parameters and roles. A harness only has to provide a `Deployer`: deploy a contract
from its path, move block time, and make a labelled address. Calls go through the contracts'
own ABI objects with `sender=` (both harnesses accept it) and default to the deployer, which
holds every admin role.

The market is a realistic ETH options market: USD cash with 6 decimals, WETH with 18, three
price feeds (8, 18 and 6 decimals) at `spot`, all three needed (min_sources 3: one bad source
cannot move the median outside the honest pair), a vol oracle without entries (tests add
them), and risk parameters a venue would start from.
"""

from __future__ import annotations

from typing import Any, Protocol

from keeper import settlement
from keeper.series import unpack_position

WAD = 10**18
DAY = 86_400
START = 1_800_000_000 - (1_800_000_000 % DAY) + 8 * 3600  # 08:00 UTC on a day

# Risk parameters: (k, v, a, conf, haircut) per mode; grid (n, horizon, u_min, u_max, tau_ref,
# tau_floor, v_max).
MM = (3 * WAD, WAD // 4, WAD // 100, WAD // 10, WAD // 10)
IM = (4 * WAD, WAD * 3 // 10, WAD * 2 // 100, WAD // 5, WAD * 15 // 100)
GRID = (3, DAY, WAD // 20, WAD // 2, WAD // 12, WAD // 365, WAD)
# The floor of every account's sigma_ref (below the ATM vols the tests list, so those decide).
REF_VOL = WAD // 2
# Liquidator: discount 2% -> 10% over 30 minutes, half the discount to the insurance fund, capped
# bids restore H_MM to 10 USD, accounts worth at most 100 USD go whole.
LIQUIDATION = (WAD * 2 // 100, WAD // 10, 1800, WAD // 2, 10 * WAD, 100 * WAD)
# VolOracle: vol_min, vol_max, max_change, max_skew, heartbeat, stale markup.
VOL_PARAMS = (WAD // 20, 5 * WAD, WAD // 2, 2 * WAD, 6 * 3600, WAD // 2)
FEED_DECIMALS = (8, 18, 6)
FEED_HEARTBEAT = 3600
MIN_SOURCES = 3
GRACE_PERIOD = 3600
GRACE_LIQUIDATION_BUFFER = WAD // 100
# Pools: (fee in bps, depth in WETH).
POOLS = ((5, 200), (30, 100), (100, 50))


class Deployer(Protocol):
    """What the wiring needs from an EVM harness."""

    @property
    def deployer(self) -> str:
        """The default sender: it deploys everything and holds every admin role."""
        ...

    def deploy(self, path: str, *args: Any) -> Any:
        """Deploy the contract at `path` (relative to the repository) with constructor args."""
        ...

    def time_travel(self, seconds: int) -> None:
        """Move block time forward."""
        ...

    def new_account(self, label: str) -> str:
        """A deterministic address for `label` that can send transactions."""
        ...


def deploy_contracts(chain: Deployer, spot: float = 3000.0, usd: Any = None) -> dict[str, Any]:
    """Deploy and wire tokens, feeds, sequencer feed, oracle, vol oracle, risk calculator,
    engine and Liquidator (which gets the engine's "liquidator" role). `usd` replaces the cash
    token (a test may bring a hostile 6-decimal one). Ends two hours after it starts, past the
    sequencer's grace period, with every feed fresh. Returns the contracts by name."""
    if usd is None:
        usd = chain.deploy("contracts/mocks/MockERC20.vy", "USD Coin", "USDC", 6)
    weth = chain.deploy("contracts/mocks/MockERC20.vy", "Wrapped Ether", "WETH", 18)
    feeds = [
        chain.deploy("contracts/mocks/MockAggregatorV3.vy", d, "ETH / USD", int(spot * 10**d))
        for d in FEED_DECIMALS
    ]
    sequencer_feed = chain.deploy("contracts/mocks/MockSequencerFeed.vy", False)
    chain.time_travel(7200)  # the sequencer has been up past its grace period
    for feed in feeds:
        feed.set_answer(feed.latestRoundData()[1])
    oracle = chain.deploy(
        "contracts/oracle/OracleAggregator.vy",
        [f.address for f in feeds],
        [FEED_HEARTBEAT] * len(feeds),
        MIN_SOURCES,
        sequencer_feed.address,
        GRACE_PERIOD,
        GRACE_LIQUIDATION_BUFFER,
    )
    vol = chain.deploy("contracts/oracle/VolOracle.vy", *VOL_PARAMS)
    vol.add_feeder(chain.deployer)
    calculator = chain.deploy("contracts/margin/RiskCalculator.vy")
    engine = chain.deploy(
        "contracts/margin/MarginEngine.vy",
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
    liquidator = chain.deploy("contracts/liquidation/Liquidator.vy", engine.address, *LIQUIDATION)
    engine.set_role("liquidator", liquidator.address)
    return {
        "usd": usd,
        "weth": weth,
        "feeds": feeds,
        "sequencer_feed": sequencer_feed,
        "oracle": oracle,
        "vol": vol,
        "calculator": calculator,
        "engine": engine,
        "liquidator": liquidator,
    }


def deploy_venues(
    chain: Deployer, engine: Any, weth: Any, usd: Any, spot: float = 3000.0
) -> tuple[Any, list[Any]]:
    """Three WETH/USD pools of different depth and fee (`POOLS`) at `spot`, a Router, and the
    engine wired to it (role "router", each pool a listed venue). Returns (router, pools)."""
    lp = chain.new_account("liquidity provider")
    pools = []
    for fee, depth in POOLS:
        pool = chain.deploy(
            "contracts/venues/ConstantProductPool.vy",
            weth.address,
            usd.address,
            fee,
            f"LP {fee}",
            f"LP{fee}",
        )
        weth_in, usd_in = depth * WAD, int(depth * spot * 10**6)
        weth.mint(lp, weth_in)
        usd.mint(lp, usd_in)
        weth.approve(pool.address, weth_in, sender=lp)
        usd.approve(pool.address, usd_in, sender=lp)
        pool.add_liquidity(weth_in, usd_in, 0, lp, sender=lp)
        pools.append(pool)
    router = chain.deploy("contracts/venues/Router.vy")
    engine.set_role("router", router.address)
    for pool in pools:
        engine.set_venue(pool.address, True)
    return router, pools


def expiry_at(timestamp: int, days: int) -> int:
    """The engine-grid expiry (08:00 UTC) `days` days after the day of `timestamp`."""
    return timestamp - timestamp % DAY + 8 * 3600 + days * DAY


def settlement_hints(oracle: Any, feeds: list[Any], expiry: int) -> list[int]:
    """The round-id hints of `oracle.settlement_price(expiry, hints)` / `settle_expiry`: per
    configured source (in the oracle's order; `feeds` must contain each source's contract),
    its first round at or after the expiry (keeper/settlement.py), 0 when it has none or
    cannot be read."""
    by_address = {str(f.address).lower(): f for f in feeds}
    return settlement.source_hints(oracle, lambda a: by_address[a.lower()], expiry)


def unpack_positions(packed: list[int]) -> tuple[list[int], list[int]]:
    """(series ids, signed sizes) from MarginEngine.packed_positions (keeper/series.py)."""
    pairs = [unpack_position(word) for word in packed]
    return [sid for sid, _ in pairs], [size for _, size in pairs]
