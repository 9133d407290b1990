"""The whole protocol on the revm harness (tests/harness/revm.py), for the fuzz suite and bench.

Deploys through tests/deployment.py, as tests/protocol.py does on titanoboa (same contracts,
parameters and wiring, so a failure found here reproduces on titanoboa):

    chain = Chain()
    p = deploy(chain)                     # tokens, 3 feeds, sequencer, oracle, vol, engine
    router, pools = deploy_venues(p)      # 3 ConstantProductPools + Router, listed as venues
    maker = Maker.new("alice")            # an EOA with a key, signs EIP-712 orders
    # (p.liquidator: the Liquidator, wired with the engine's "liquidator" role)
    order = maker.order(series_id, is_buy=True, size=WAD, price=100 * WAD, deadline=...)
    p.engine.fill(as_tuple(order), maker.sign(p, order), WAD, taker, sender=taker)

Signing is the hot path of a fuzzer that fills thousands of orders: `Maker.sign` computes the
EIP-712 digest in Python and signs with a FIXED per-maker ECDSA nonce k, so a signature costs one
modular inverse instead of a scalar multiplication (2.6 ms with eth_keys' pure-Python backend).
The signatures are valid (low-s, v in {27, 28}) and recover to the maker, but reusing k leaks
the key to anyone holding two of them: test keys only, never a real one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_keys import keys
from eth_utils import keccak

from keeper.orders import domain_separator, order_digest
from tests import deployment
from tests.deployment import FEED_DECIMALS
from tests.harness.revm import Chain, Contract

USD_SCALE = 10**12  # USD has 6 decimals: token units -> wad


@dataclass
class Protocol:
    """The deployed contracts and the account holding every admin role (the deployer)."""

    chain: Chain
    usd: Contract
    weth: Contract
    feeds: list[Contract]
    sequencer_feed: Contract
    oracle: Contract
    vol: Contract
    calculator: Contract
    engine: Contract
    liquidator: Contract
    admin: str
    chain_id: int
    router: Contract | None = None
    pools: tuple[Contract, ...] = ()

    def set_spot(self, price: float) -> None:
        """Publish `price` (USD per ETH) on every feed, as a fresh round at the current time."""
        for feed, decimals in zip(self.feeds, FEED_DECIMALS, strict=True):
            feed.set_answer(round(price * 10**decimals))

    def set_spot_wad(self, price_wad: int) -> None:
        """As `set_spot` with a wad price (exact for the 18- and 8-decimal feeds)."""
        for feed, decimals in zip(self.feeds, FEED_DECIMALS, strict=True):
            feed.set_answer(price_wad // 10 ** (18 - decimals))

    def fund(self, account: str, usd: int = 0, weth: int = 0) -> None:
        """Mint token units (USD: 6 decimals, WETH: 18) to `account` and deposit them."""
        for token, amount in ((self.usd, usd), (self.weth, weth)):
            if amount:
                token.mint(account, amount)
                token.approve(self.engine.address, amount, sender=account)
                self.engine.deposit(token.address, amount, sender=account)


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
    contracts = deployment.deploy_contracts(_RevmDeployer(chain), spot)
    chain_id = int(contracts["engine"].eip712Domain()[3])
    return Protocol(chain=chain, admin=chain.deployer, chain_id=chain_id, **contracts)


def deploy_venues(p: Protocol, spot: float = 3000.0) -> tuple[Contract, list[Contract]]:
    """Three USD/WETH pools, a Router, and the engine wired to them (tests/deployment.py);
    also kept on `p` (`p.router`, `p.pools`). Returns (router, pools)."""
    router, pools = deployment.deploy_venues(_RevmDeployer(p.chain), p.engine, p.weth, p.usd, spot)
    p.router, p.pools = router, tuple(pools)
    return router, pools


# ---------------------------------------------------------------------------------------------
# Signed orders (EIP-712 digests from keeper/orders.py, signed with a fixed nonce)
# ---------------------------------------------------------------------------------------------

# secp256k1 group order.
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass
class Maker:
    """An EOA with a private key: its address is an engine account that can sign orders.

    Signs with a fixed nonce k (see the module notes): r and the parity of R are computed once."""

    key: int
    address: str
    _k_inv: int
    _r: int
    _odd: int
    _separators: dict[tuple[int, str], bytes]

    @classmethod
    def new(cls, seed: str) -> Maker:
        key = int.from_bytes(keccak(text=f"kappa maker:{seed}"), "big") % (_N - 1) + 1
        k = int.from_bytes(keccak(text=f"kappa maker nonce:{seed}"), "big") % (_N - 1) + 1
        point = keys.PrivateKey(k.to_bytes(32, "big")).public_key.to_bytes()  # k * G (x || y)
        r = int.from_bytes(point[:32], "big") % _N
        odd = point[63] & 1
        address = keys.PrivateKey(key.to_bytes(32, "big")).public_key.to_checksum_address()
        return cls(key, address.lower(), pow(k, -1, _N), r, odd, {})

    def order(
        self,
        series_id: int,
        is_buy: bool,
        size: int,
        price: int,
        nonce: int,
        deadline: int,
    ) -> dict[str, Any]:
        return {
            "maker": self.address,
            "series_id": series_id,
            "is_buy": is_buy,
            "size": size,
            "price": price,
            "nonce": nonce,
            "deadline": deadline,
        }

    def sign_digest(self, digest: bytes) -> bytes:
        """A 65-byte r || s || v signature of `digest`, with s <= n/2 (EIP-2)."""
        z = int.from_bytes(digest, "big")
        s = self._k_inv * (z + self._r * self.key) % _N
        odd = self._odd
        if s > _N // 2:  # the low-s form negates the nonce point: flip the parity
            s, odd = _N - s, odd ^ 1
        return self._r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([27 + odd])

    def sign(self, p: Protocol, order: dict[str, Any]) -> bytes:
        """Sign `order` for the engine of `p` (EIP-712 domain of that engine and chain)."""
        key = (p.chain_id, p.engine.address)
        separator = self._separators.get(key)
        if separator is None:
            separator = self._separators[key] = domain_separator(*key)
        return self.sign_digest(order_digest(separator, order))


def position_ids(engine: Contract, account: str) -> tuple[list[int], list[int]]:
    """(series ids, signed sizes) of an account, from `packed_positions`."""
    return deployment.unpack_positions(engine.packed_positions(account))
