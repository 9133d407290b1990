"""Unit tests of contracts/margin/orders.vy, through tests/contracts/OrdersHarness.vy.

Every test name contains "orders" (`pytest -k orders`). Orders are signed with eth_account's
EIP-712 encoder, so the contract's digest is checked against an independent implementation;
every revert reason of the module has a test, and a Hypothesis property drives random
sequences of partial fills.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import Any

import boa
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper import orders
from keeper.orders import ORDER_TYPES, as_tuple
from tests.conftest import events, load, scaled

WAD = 10**18
ZERO = "0x" + "00" * 20
MAX_UINT = 2**256 - 1
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HARNESS = "tests/contracts/OrdersHarness.vy"

MAKER = Account.from_key(keccak(text="kappa orders maker"))
OTHER = Account.from_key(keccak(text="kappa orders other"))
_nonces = count(1000)


def now() -> int:
    return int(boa.env.evm.patch.timestamp)


def make_order(**fields: Any) -> dict[str, Any]:
    """An order by MAKER, valid for an hour, with a fresh nonce unless given."""
    order = {
        "maker": MAKER.address,
        "series_id": 7,
        "is_buy": True,
        "size": 10 * WAD,
        "price": 125 * WAD,
        "nonce": next(_nonces),
        "deadline": now() + 3600,
    }
    order.update(fields)
    return order


def signable(harness: Any, order: dict[str, Any], chain_id: int | None = None):
    domain = {
        "name": "Kappa",
        "version": "1",
        "chainId": boa.env.evm.patch.chain_id if chain_id is None else chain_id,
        "verifyingContract": harness.address,
    }
    return encode_typed_data(domain, ORDER_TYPES, order)


def sign(harness: Any, order: dict[str, Any], key: Any = MAKER, chain_id: int | None = None):
    """65-byte r || s || v signature of the order's EIP-712 digest (v in {27, 28})."""
    return bytes(Account.sign_message(signable(harness, order, chain_id), key.key).signature)


def split(sig: bytes) -> tuple[int, int, int]:
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]


def join(r: int, s: int, v: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


@pytest.fixture(scope="module")
def deployed() -> Any:
    return load(HARNESS)


@pytest.fixture
def harness(deployed: Any) -> Iterator[Any]:
    """The module's harness, with the chain state rolled back after each test."""
    with boa.env.anchor():
        yield deployed


# ---------------------------------------------------------------------------------------------
# Digest
# ---------------------------------------------------------------------------------------------


def test_orders_digest_matches_eth_account(harness):
    order = make_order(is_buy=False, series_id=2**200, price=MAX_UINT)
    msg = signable(harness, order)
    assert harness.domain_separator() == msg.header
    assert harness.struct_hash(as_tuple(order)) == msg.body
    assert harness.order_hash(as_tuple(order)) == keccak(b"\x19\x01" + msg.header + msg.body)
    # keeper/orders.py's direct encoding (what makers and the fuzz suite use) agrees.
    chain_id = boa.env.evm.patch.chain_id
    assert orders.domain_separator(chain_id, harness.address) == msg.header
    assert orders.digest(chain_id, harness.address, order) == harness.order_hash(as_tuple(order))


def test_orders_eip712_domain(harness):
    fields, name, version, chain_id, verifying, salt, extensions = harness.eip712Domain()
    assert fields == b"\x0f"
    assert (name, version, chain_id) == ("Kappa", "1", boa.env.evm.patch.chain_id)
    assert verifying == harness.address
    assert salt == b"\x00" * 32
    assert extensions == []


def test_orders_digest_binds_verifying_contract(harness):
    other = load(HARNESS)
    order = make_order()
    assert harness.domain_separator() != other.domain_separator()
    sig = sign(harness, order)
    with boa.reverts("orders: bad signature"):
        other.fill(as_tuple(order), sig, WAD)


def test_orders_chain_id_change_rebuilds_separator(harness):
    order = make_order()
    sig_1 = sign(harness, order)
    original = boa.env.evm.patch.chain_id
    boa.env.evm.patch.chain_id = 4242
    try:
        assert harness.domain_separator() == signable(harness, order).header
        assert harness.domain_separator() != signable(harness, order, chain_id=original).header
        # A signature for the original chain does not replay on the fork.
        with boa.reverts("orders: bad signature"):
            harness.fill(as_tuple(order), sig_1, WAD)
        assert harness.fill(as_tuple(order), sign(harness, order), WAD) == WAD
    finally:
        boa.env.evm.patch.chain_id = original
    assert harness.domain_separator() == signable(harness, order).header


def test_orders_deploy_on_other_chain_caches_its_id():
    original = boa.env.evm.patch.chain_id
    boa.env.evm.patch.chain_id = 10
    try:
        with boa.env.anchor():
            h = load(HARNESS)
            order = make_order()
            assert h.domain_separator() == signable(h, order, chain_id=10).header
            assert h.eip712Domain()[3] == 10
            assert h.fill(as_tuple(order), sign(h, order, chain_id=10), WAD) == WAD
    finally:
        boa.env.evm.patch.chain_id = original


# ---------------------------------------------------------------------------------------------
# Fills
# ---------------------------------------------------------------------------------------------


def test_orders_full_fill(harness):
    order = make_order()
    digest = harness.order_hash(as_tuple(order))
    assert harness.fill(as_tuple(order), sign(harness, order), order["size"]) == order["size"]
    logged = events(harness)  # read before any other call replaces the last computation
    assert harness.filled(digest) == order["size"]
    assert logged == [
        (
            "OrderFilled",
            {
                "order_hash": digest,
                "maker": MAKER.address,
                "amount": order["size"],
                "filled_total": order["size"],
            },
        )
    ]
    with boa.reverts("orders: overfill"):
        harness.fill(as_tuple(order), sign(harness, order), 1)


def test_orders_partial_fills_accumulate(harness):
    order = make_order(size=10 * WAD)
    sig = sign(harness, order)
    digest = harness.order_hash(as_tuple(order))
    assert harness.fill(as_tuple(order), sig, 3 * WAD) == 3 * WAD
    assert harness.fill(as_tuple(order), sig, 4 * WAD) == 7 * WAD
    assert events(harness)[-1][1]["filled_total"] == 7 * WAD
    with boa.reverts("orders: overfill"):
        harness.fill(as_tuple(order), sig, 3 * WAD + 1)
    assert harness.fill(as_tuple(order), sig, 3 * WAD) == 10 * WAD
    assert harness.filled(digest) == 10 * WAD


def test_orders_overfill_rejected(harness):
    order = make_order(size=5)
    sig = sign(harness, order)
    with boa.reverts("orders: overfill"):
        harness.fill(as_tuple(order), sig, 6)
    # A huge amount is a clean overfill, not an arithmetic panic.
    with boa.reverts("orders: overfill"):
        harness.fill(as_tuple(order), sig, MAX_UINT)
    harness.fill(as_tuple(order), sig, 2)
    with boa.reverts("orders: overfill"):
        harness.fill(as_tuple(order), sig, MAX_UINT)
    # A zero-size order can never be filled.
    empty_order = make_order(size=0)
    with boa.reverts("orders: overfill"):
        harness.fill(as_tuple(empty_order), sign(harness, empty_order), 1)


def test_orders_zero_amount_rejected(harness):
    order = make_order()
    with boa.reverts("orders: zero amount"):
        harness.fill(as_tuple(order), sign(harness, order), 0)


def test_orders_expired_rejected(harness):
    order = make_order(deadline=now() + 100)
    sig = sign(harness, order)
    boa.env.time_travel(seconds=100)
    assert now() == order["deadline"]
    harness.fill(as_tuple(order), sig, WAD)  # the deadline itself is still valid
    boa.env.time_travel(seconds=1)
    with boa.reverts("orders: expired"):
        harness.fill(as_tuple(order), sig, WAD)


# ---------------------------------------------------------------------------------------------
# Cancellation
# ---------------------------------------------------------------------------------------------


def test_orders_cancelled_order_rejected(harness):
    order = make_order()
    sig = sign(harness, order)
    harness.fill(as_tuple(order), sig, WAD)
    digest = harness.order_hash(as_tuple(order))
    assert harness.cancel(as_tuple(order), sender=MAKER.address) == digest
    assert events(harness) == [("OrderCancelled", {"order_hash": digest, "maker": MAKER.address})]
    assert harness.cancelled(digest)
    with boa.reverts("orders: cancelled"):
        harness.fill(as_tuple(order), sig, WAD)
    # Cancelling again is harmless; a sibling order (another nonce) is unaffected.
    harness.cancel(as_tuple(order), sender=MAKER.address)
    sibling = make_order()
    assert harness.fill(as_tuple(sibling), sign(harness, sibling), WAD) == WAD


def test_orders_cancel_by_non_maker_rejected(harness):
    order = make_order()
    with boa.reverts("orders: not maker"):
        harness.cancel(as_tuple(order), sender=OTHER.address)
    assert not harness.cancelled(harness.order_hash(as_tuple(order)))


def test_orders_cancel_all_below(harness):
    low = make_order(nonce=4)
    at = make_order(nonce=5)
    harness.cancel_all_below(5, sender=MAKER.address)
    assert events(harness) == [("NoncesCancelled", {"maker": MAKER.address, "min_nonce": 5})]
    assert harness.min_nonce(MAKER.address) == 5
    with boa.reverts("orders: nonce cancelled"):
        harness.fill(as_tuple(low), sign(harness, low), WAD)
    assert harness.fill(as_tuple(at), sign(harness, at), WAD) == WAD
    # Another maker's floor is untouched.
    assert harness.min_nonce(OTHER.address) == 0
    other = make_order(maker=OTHER.address, nonce=0)
    assert harness.fill(as_tuple(other), sign(harness, other, OTHER), WAD) == WAD


def test_orders_cancel_all_below_must_increase(harness):
    with boa.reverts("orders: nonce not increasing"):
        harness.cancel_all_below(0, sender=MAKER.address)
    harness.cancel_all_below(5, sender=MAKER.address)
    for nonce in (5, 4):
        with boa.reverts("orders: nonce not increasing"):
            harness.cancel_all_below(nonce, sender=MAKER.address)
    harness.cancel_all_below(6, sender=MAKER.address)
    assert harness.min_nonce(MAKER.address) == 6


# ---------------------------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------------------------


def test_orders_wrong_signer_rejected(harness):
    order = make_order()
    with boa.reverts("orders: bad signature"):
        harness.fill(as_tuple(order), sign(harness, order, OTHER), WAD)


@pytest.mark.parametrize("field", orders.ORDER_FIELDS)
def test_orders_tampered_field_rejected(harness, field):
    order = make_order()
    sig = sign(harness, order)
    tampered = dict(order)
    if field == "maker":
        tampered["maker"] = OTHER.address
    elif field == "is_buy":
        tampered["is_buy"] = not order["is_buy"]
    elif field == "deadline":
        tampered["deadline"] = order["deadline"] - 1
    else:
        tampered[field] = order[field] + 1
    with boa.reverts("orders: bad signature"):
        harness.fill(as_tuple(tampered), sig, WAD)


def test_orders_ecrecover_failure_never_matches_zero_maker(harness):
    # r = 0 makes ecrecover fail (return the zero address): a zero maker must not pass.
    order = make_order(maker=ZERO)
    with boa.reverts("orders: bad signature"):
        harness.fill(as_tuple(order), join(0, 1, 27), WAD)


def test_orders_malleable_signature_rejected(harness):
    order = make_order()
    r, s, v = split(sign(harness, order))
    assert s <= SECP256K1_N // 2  # eth_account produces canonical (low-s) signatures
    twin = join(r, SECP256K1_N - s, 55 - v)  # the same signer's other valid encoding
    with boa.reverts("orders: malleable signature"):
        harness.fill(as_tuple(order), twin, WAD)
    harness.fill(as_tuple(order), join(r, s, v), WAD)


@pytest.mark.parametrize("bad_v", [0, 1, 26, 29, 255])
def test_orders_bad_v_rejected(harness, bad_v):
    order = make_order()
    r, s, _ = split(sign(harness, order))
    with boa.reverts("orders: bad v"):
        harness.fill(as_tuple(order), join(r, s, bad_v), WAD)


@pytest.mark.parametrize("length", [0, 64])
def test_orders_bad_signature_length_rejected(harness, length):
    order = make_order()
    with boa.reverts("orders: bad signature length"):
        harness.fill(as_tuple(order), sign(harness, order)[:length], WAD)


# ---------------------------------------------------------------------------------------------
# Check order
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, reason",
    [
        ("zero+expired", "orders: zero amount"),
        ("expired+nonce", "orders: expired"),
        ("nonce+cancelled", "orders: nonce cancelled"),
        ("cancelled+overfill", "orders: cancelled"),
        ("overfill+signature", "orders: overfill"),
    ],
)
def test_orders_check_order(harness, case, reason):
    """When two checks fail, the earlier one (in the documented order) reports."""
    order = make_order(nonce=3, size=WAD)
    sig = sign(harness, order)
    amount = WAD
    if case == "zero+expired":
        amount = 0
        boa.env.time_travel(seconds=7200)
    elif case == "expired+nonce":
        harness.cancel_all_below(10, sender=MAKER.address)
        boa.env.time_travel(seconds=7200)
    elif case == "nonce+cancelled":
        harness.cancel(as_tuple(order), sender=MAKER.address)
        harness.cancel_all_below(10, sender=MAKER.address)
    elif case == "cancelled+overfill":
        harness.cancel(as_tuple(order), sender=MAKER.address)
        amount = 2 * WAD
    else:
        sig = sign(harness, order, OTHER)
        amount = 2 * WAD
    with boa.reverts(reason):
        harness.fill(as_tuple(order), sig, amount)


# ---------------------------------------------------------------------------------------------
# Property
# ---------------------------------------------------------------------------------------------


@settings(max_examples=scaled(60))
@given(
    size=st.one_of(st.integers(1, 100), st.integers(1, MAX_UINT)),
    fractions=st.lists(
        st.one_of(
            st.floats(0, 1.2),
            st.just(0.0),
            st.just(1.0),
            st.just(float("inf")),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_orders_property_fills_never_exceed_size(deployed, size, fractions):
    """Random partial fills: accepted fills add up exactly and never pass the size."""
    order = make_order(size=size)
    sig = sign(deployed, order)
    digest = deployed.order_hash(as_tuple(order))
    accepted = 0
    for fraction in fractions:
        amount = MAX_UINT if fraction == float("inf") else int(size * fraction)
        if amount == 0:
            with boa.reverts("orders: zero amount"):
                deployed.fill(as_tuple(order), sig, 0)
        elif accepted + amount > size:
            with boa.reverts("orders: overfill"):
                deployed.fill(as_tuple(order), sig, amount)
        else:
            accepted += amount
            assert deployed.fill(as_tuple(order), sig, amount) == accepted
        total = deployed.filled(digest)
        assert total == accepted <= size
