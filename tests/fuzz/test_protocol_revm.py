"""The fuzz suite's deployer and order signer (tests/fuzz/protocol_revm.py) against the contracts:
the protocol deploys as tests/protocol.py wires it, and fixed-nonce signatures are valid EIP-712
signatures the engine accepts and eth_keys recovers to the maker."""

from __future__ import annotations

import pytest
from eth_keys import keys

from keeper.orders import as_tuple, domain_separator, order_digest
from tests.deployment import DAY, WAD
from tests.fuzz.protocol_revm import Maker, position_ids
from tests.fuzz.stateful.world import World, world

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture(scope="module")
def w() -> World:
    """The fuzz world at its starting snapshot (the machines share it and leave it anywhere)."""
    out = world()
    out.chain.revert(out.base)
    return out


def test_wiring(w: World) -> None:
    p = w.p
    assert p.engine.liquidator() == p.liquidator.address
    assert p.router is not None and p.engine.router() == p.router.address
    assert all(p.engine.is_venue(pool.address) for pool in p.pools)
    assert p.oracle.price()[0] == 3000 * WAD
    assert p.liquidator.insurance_fund() > 0


@pytest.mark.parametrize("seed", ["a", "b", "c", "d"])
def test_signatures_recover_to_the_maker(seed: str) -> None:
    maker = Maker.new(seed, fast=True)
    for i in range(8):
        digest = bytes([i]) * 32
        sig = maker.sign_digest(digest)
        assert sig[64] in (27, 28)
        assert int.from_bytes(sig[32:64], "big") <= SECP256K1_N // 2
        vrs = (sig[64] - 27, int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"))
        recovered = keys.Signature(vrs=vrs).recover_public_key_from_msg_hash(digest)
        assert recovered.to_checksum_address().lower() == maker.address


def test_engine_accepts_the_orders(w: World) -> None:
    chain, p = w.chain, w.p
    with chain.anchor():
        maker, taker = w.traders[0], w.traders[1].address
        sid = min(w.series)
        order = maker.order(sid, True, WAD, 50 * WAD, 7, chain.timestamp + DAY)
        p.engine.fill(as_tuple(order), maker.sign(p, order), WAD // 2, taker, sender=taker)
        (fill,) = [e for e in p.engine.get_logs() if e.name == "Fill"]
        separator = domain_separator(p.chain_id, p.order_book.address)
        assert fill.order_hash == order_digest(separator, order)
        assert p.order_book.filled(fill.order_hash) == WAD // 2
        assert position_ids(p.engine, maker.address) == ([sid], [WAD // 2])


def test_fast_return_decoder_matches_eth_abi() -> None:
    """The harness' direct decoder (tests/harness/revm.py `_return_decoder`) agrees with
    eth-abi on the types it handles."""
    from eth_abi import decode, encode

    from tests.harness.revm import _return_decoder

    types = ("uint256", "int256", "address", "bool", "bytes4", "uint256[]", "int128[]")
    values = (
        2**255 + 7,
        -(2**200),
        "0x" + "ab" * 20,
        True,
        b"\x01\x02\x03\x04",
        [0, 1, 2**256 - 1],
        [-1, 2**100],
    )
    raw = encode(list(types), list(values))
    assert _return_decoder(types)(raw) == tuple(
        list(v) if isinstance(v, tuple) else v for v in decode(list(types), raw)
    )
