"""The test harness for any EVM: the protocol's parameters and wiring, `Protocol`, `Maker`.

This is the one test harness; titanoboa (tests/protocol.py: unit, property and differential
tests, benches) and revm (tests/fuzz/protocol_revm.py: the stateful fuzz suite) only plug an
EVM into it. Both deploy through `deploy_contracts` and `deploy_venues` and get the same
`Protocol` (one `fund` in whole tokens, one `set_spot`, settlement hints, views) and the same
`Maker` (orders, digests, signatures; the fast fixed-nonce signer is `Maker.new(seed,
fast=True)`), so a failure the fuzzer finds reproduces on titanoboa with the same contracts,
parameters, roles, accounts and calls. A harness only has to provide a `Deployer`: deploy a
contract from its path, move block time, and make a labelled address. Calls go through the
contracts' own ABI objects with `sender=` (both harnesses accept it) and default to the
deployer, which holds every admin role.

The market is a realistic ETH options market: USD cash with 6 decimals, WETH with 18, three
price feeds (8, 18 and 6 decimals) at `spot`, all three needed (min_sources 3: one bad source
cannot move the median outside the honest pair), a vol oracle without entries (tests add
them), and risk parameters a venue would start from.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from eth_account.messages import SignableMessage
from eth_keys import keys
from eth_utils import keccak

from keeper import orders, series, settlement
from keeper.margin import MarginParams
from keeper.series import unpack_position

WAD = 10**18
DAY = 86_400
YEAR = 365 * DAY  # the margin model's year (docs/margin_model.md), as the contracts count it
START = 1_800_000_000 - (1_800_000_000 % DAY) + 8 * 3600  # 08:00 UTC on a day

# Risk parameters: (k, v, a, conf, haircut, a_perp) per mode; grid (n, horizon, u_min, u_max,
# tau_ref, tau_floor, v_max).
MM = (3 * WAD, WAD // 4, WAD // 100, WAD // 10, WAD // 10, WAD // 100)
IM = (4 * WAD, WAD * 3 // 10, WAD * 2 // 100, WAD // 5, WAD * 15 // 100, WAD * 25 // 1000)
GRID = (3, DAY, WAD // 20, WAD // 2, WAD // 12, WAD // 365, WAD)
# The perp (PerpBook.list_perp): band 2%, mark half-life 30 minutes, funding converges over 8
# hours, at most 0.05% an hour. Over the one-day margin horizon the cap charges at most 1.2% of
# the notional, below IM's perp contingency minus MM's (2.5% - 1%).
PERP = (WAD // 50, 1800, 8, WAD // 2000)
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
# Cash interest a deployment would start from (MarginEngine.set_interest_params: base, slope1,
# slope2, kink, reserve factor, utilization cap; deploy/networks/*.yaml `interest:`). Not set by
# `deploy_contracts` (the engine starts with interest off), so tests opt in.
INTEREST = (0, 4 * WAD // 100, 75 * WAD // 100, 8 * WAD // 10, WAD // 10, 9 * WAD // 10)
# The risk parameters above as keeper/margin.py takes them.
MARGIN_PARAMS = MarginParams.from_wads(IM, MM, GRID, REF_VOL)
# Pools: (fee in bps, depth in WETH).
POOLS = ((5, 200), (30, 100), (100, 50))


class Deployer(typing.Protocol):
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
    order_book = chain.deploy("contracts/margin/OrderBook.vy", engine.address)
    engine.set_role("orders", order_book.address)
    perp_book = chain.deploy("contracts/margin/PerpBook.vy", engine.address)
    engine.set_role("perps", perp_book.address)
    perp_book.list_perp(*PERP)
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
        "order_book": order_book,
        "perp_book": perp_book,
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


def position_ids(engine: Any, account: str) -> tuple[list[int], list[int]]:
    """(series ids, signed sizes) of an account, from `packed_positions`."""
    return unpack_positions(engine.packed_positions(account))


# ---------------------------------------------------------------------------------------------
# The deployed protocol
# ---------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Protocol:
    """The deployed contracts (by `deploy_contracts`' names), the account holding every admin
    role, the chain id, and the venues once `deploy_venues` has run."""

    usd: Any
    weth: Any
    feeds: list[Any]
    sequencer_feed: Any
    oracle: Any
    vol: Any
    calculator: Any
    engine: Any
    liquidator: Any
    order_book: Any
    perp_book: Any
    admin: str
    chain_id: int
    router: Any = None
    pools: tuple[Any, ...] = ()

    def set_spot(self, price: float) -> None:
        """Publish `price` (USD per ETH) on every feed, as a fresh round at the current time."""
        for feed, decimals in zip(self.feeds, FEED_DECIMALS, strict=True):
            feed.set_answer(round(price * 10**decimals))

    def set_spot_wad(self, price_wad: int) -> None:
        """As `set_spot` with a wad price (exact for the 18- and 8-decimal feeds)."""
        for feed, decimals in zip(self.feeds, FEED_DECIMALS, strict=True):
            feed.set_answer(price_wad // 10 ** (18 - decimals))

    def fund(self, account: str, usd: float = 0, weth: float = 0) -> None:
        """Mint `usd` cash tokens and `weth` WETH, in whole tokens (1.5 is 1.5 USD; scaled by
        each token's own decimals, exactly), to `account` and deposit them into its engine
        account."""
        for token, amount in ((self.usd, usd), (self.weth, weth)):
            if amount:
                units = int(Decimal(str(amount)) * 10 ** token.decimals())
                token.mint(account, units)
                token.approve(self.engine.address, units, sender=account)
                self.engine.deposit(token.address, units, sender=account)

    def settlement_hints(self, expiry: int, extra_feeds: list[Any] | None = None) -> list[int]:
        """Round-id hints for `engine.settle_expiry(expiry, hints)` (`settlement_hints`);
        `extra_feeds` are sources a test added to the oracle beyond `feeds`."""
        return settlement_hints(self.oracle, self.feeds + (extra_feeds or []), expiry)

    def settle_expiry(self, expiry: int) -> None:
        """Record the settlement price of `expiry` with the hints from the feeds' history."""
        self.engine.settle_expiry(expiry, self.settlement_hints(expiry))

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


def deploy_protocol(chain: Deployer, spot: float = 3000.0, usd: Any = None) -> Protocol:
    """`deploy_contracts` as a `Protocol` (the deployer holds every role)."""
    contracts = deploy_contracts(chain, spot, usd)
    chain_id = int(contracts["order_book"].eip712Domain()[3])
    return Protocol(admin=chain.deployer, chain_id=chain_id, **contracts)


def add_venues(chain: Deployer, p: Protocol, spot: float = 3000.0) -> tuple[Any, list[Any]]:
    """`deploy_venues` for `p`, kept on it (`p.router`, `p.pools`). Returns (router, pools)."""
    router, pools = deploy_venues(chain, p.engine, p.weth, p.usd, spot)
    p.router, p.pools = router, tuple(pools)
    return router, pools


# ---------------------------------------------------------------------------------------------
# Signed orders (EIP-712, domain "Kappa" / "1", verifying contract = the engine)
# ---------------------------------------------------------------------------------------------

# secp256k1 group order.
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass
class Maker:
    """An EOA with a private key: its address is an engine account that can sign orders.

    Two signers behind one API (`sign(p, order)`):
    - default: eth_account's generic EIP-712 encoder and signer (keeper/orders.sign), an
      implementation independent of the engine's digest, so tests that fill these orders also
      check that digest;
    - `fast=True`, the hot path of a fuzzer that fills thousands of orders: the digest from
      keeper/orders.order_digest signed with a FIXED per-maker ECDSA nonce k, so a signature
      costs one modular inverse instead of a scalar multiplication (2.6 ms with eth_keys'
      pure-Python backend). The signatures are valid (low-s, v in {27, 28}) and recover to the
      maker, but reusing k leaks the key to anyone holding two of them: test keys only.

    A harness sets how addresses are written (`checksum`: titanoboa returns checksummed ones,
    revm lowercase) and the clock of the default deadline (`now`).
    """

    key: int
    address: str
    fast: bool = False
    _k_inv: int = 0
    _r: int = 0
    _odd: int = 0
    _separators: dict[tuple[int, str], bytes] = field(default_factory=dict, repr=False)

    checksum: ClassVar[bool] = False
    # The current block time, for an order's default deadline (one day later); None: every
    # order needs an explicit deadline.
    now: ClassVar[Callable[[], int] | None] = None

    @classmethod
    def new(cls, seed: str, fast: bool = False) -> Maker:
        """The maker for `seed` (the same key and address on every harness)."""
        key = int.from_bytes(keccak(text=f"kappa maker:{seed}"), "big") % (_N - 1) + 1
        address = keys.PrivateKey(key.to_bytes(32, "big")).public_key.to_checksum_address()
        out = cls(key, address if cls.checksum else address.lower(), fast)
        if fast:
            k = int.from_bytes(keccak(text=f"kappa maker nonce:{seed}"), "big") % (_N - 1) + 1
            point = keys.PrivateKey(k.to_bytes(32, "big")).public_key.to_bytes()  # k * G
            out._k_inv, out._odd = pow(k, -1, _N), point[63] & 1
            out._r = int.from_bytes(point[:32], "big") % _N
        return out

    def order(
        self,
        series_id: int,
        is_buy: bool,
        size: int,
        price: int,
        nonce: int = 0,
        deadline: int | None = None,
    ) -> dict[str, Any]:
        """An order of this maker (sizes and prices in wad; deadline a unix time, by default
        one day after the harness's current block time)."""
        if deadline is None:
            if type(self).now is None:
                raise ValueError("this harness has no clock: give the order a deadline")
            deadline = type(self).now() + DAY  # type: ignore[misc]
        return {
            "maker": self.address,
            "series_id": series_id,
            "is_buy": is_buy,
            "size": size,
            "price": price,
            "nonce": nonce,
            "deadline": deadline,
        }

    def _separator(self, p: Protocol) -> bytes:
        key = (p.chain_id, str(p.order_book.address))
        separator = self._separators.get(key)
        if separator is None:
            separator = self._separators[key] = orders.domain_separator(*key)
        return separator

    def digest(self, p: Protocol, order: dict[str, Any]) -> bytes:
        """The order hash the order book of `p` tracks fills and cancels by (computed off chain)."""
        return orders.order_digest(self._separator(p), order)

    def message(self, p: Protocol, order: dict[str, Any]) -> SignableMessage:
        """The EIP-712 message of `order` for the order book of `p` (eth_account)."""
        return orders.typed_message(p.chain_id, str(p.order_book.address), order)

    def sign(self, p: Protocol, order: dict[str, Any]) -> bytes:
        """A 65-byte r || s || v signature of `order` for the order book of `p`."""
        if self.fast:
            return self.sign_digest(self.digest(p, order))
        key = self.key.to_bytes(32, "big")
        return orders.sign(key, p.chain_id, str(p.order_book.address), order)

    def sign_digest(self, digest: bytes) -> bytes:
        """The fast signer's r || s || v signature of `digest`, with s <= n/2 (EIP-2)."""
        if not self.fast:
            raise ValueError("sign_digest is the fast signer's: make the maker with fast=True")
        z = int.from_bytes(digest, "big")
        s = self._k_inv * (z + self._r * self.key) % _N
        odd = self._odd
        if s > _N // 2:  # the low-s form negates the nonce point: flip the parity
            s, odd = _N - s, odd ^ 1
        return self._r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + odd])


as_tuple = orders.as_tuple
