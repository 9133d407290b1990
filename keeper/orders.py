"""Kappa's signed orders off chain: the EIP-712 schema, digests and signatures (pure, no I/O).

An order is `{maker, series_id, is_buy, size, price, nonce, deadline}` (DESIGN.md, "Margin
engine"), a dict keyed by `ORDER_FIELDS`, signed under the domain `{name "Kappa", version "1",
chainId, verifyingContract = the OrderBook}` (contracts/margin/OrderBook.vy, the engine's
"orders" book: it verifies the signature and tracks partial fills and cancels by the order's
digest), so `digest` is also how a maker finds its order's state on chain (`filled`,
`cancelled` on the book).

`digest` computes the EIP-712 hash directly (two keccaks over fixed-width words, fast enough for
a fuzzer signing thousands of orders); `typed_message` builds the same message with
eth_account's generic EIP-712 encoder, which `sign` uses and the tests compare against.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import keccak

ORDER_FIELDS = ("maker", "series_id", "is_buy", "size", "price", "nonce", "deadline")
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
DOMAIN_NAME = "Kappa"
DOMAIN_VERSION = "1"
_DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_ORDER_TYPEHASH = keccak(
    text="Order(" + ",".join(f"{f['type']} {f['name']}" for f in ORDER_TYPES["Order"]) + ")"
)


def _word(value: int | bool | str) -> bytes:
    """One ABI word: an address (hex string) left-padded, an integer or bool big-endian."""
    if isinstance(value, str):
        return bytes(12) + bytes.fromhex(value.removeprefix("0x"))
    return int(value).to_bytes(32, "big")


def domain(chain_id: int, order_book: str) -> dict[str, Any]:
    """The EIP-712 domain of the order book at `order_book` on chain `chain_id`."""
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": int(chain_id),
        "verifyingContract": str(order_book),
    }


def domain_separator(chain_id: int, order_book: str) -> bytes:
    """keccak256(abi_encode(DOMAIN_TYPEHASH, keccak("Kappa"), keccak("1"), chainId, order_book))."""
    return keccak(
        _DOMAIN_TYPEHASH
        + keccak(text=DOMAIN_NAME)
        + keccak(text=DOMAIN_VERSION)
        + _word(int(chain_id))
        + _word(str(order_book))
    )


def order_digest(separator: bytes, order: dict[str, Any]) -> bytes:
    """The EIP-712 digest keccak("\\x19\\x01" || separator || struct hash) of `order`."""
    struct = keccak(_ORDER_TYPEHASH + b"".join(_word(order[f]) for f in ORDER_FIELDS))
    return keccak(b"\x19\x01" + separator + struct)


def digest(chain_id: int, order_book: str, order: dict[str, Any]) -> bytes:
    """The order's digest for the order book at `order_book` on chain `chain_id`."""
    return order_digest(domain_separator(chain_id, order_book), order)


def typed_message(chain_id: int, order_book: str, order: dict[str, Any]) -> SignableMessage:
    """The order as an EIP-712 message (eth_account) for the order book at `order_book`, ready
    for `Account.sign_message`."""
    return encode_typed_data(domain(chain_id, order_book), ORDER_TYPES, order)


def sign(key: bytes, chain_id: int, order_book: str, order: dict[str, Any]) -> bytes:
    """The maker's 65-byte r || s || v signature (v in {27, 28}, low s) of `order` for the
    order book at `order_book`."""
    message = typed_message(chain_id, order_book, order)
    return bytes(Account.sign_message(message, key).signature)


def as_tuple(order: dict[str, Any]) -> tuple[Any, ...]:
    """The order as the contracts' ABI struct (the engine's `fill`, the book's `cancel`)."""
    return tuple(order[f] for f in ORDER_FIELDS)
