# pragma version ~=0.4.3
# pragma optimize gas
"""
@title orders: EIP-712 signed orders, partial fills and cancellation for the margin engine
@license MIT
@notice Stateful module: OrderBook declares `initializes: orders`, calls `orders.__init__()` in
        its constructor, and `exports:` the getters `filled`, `cancelled`, `min_nonce` and
        the EIP-5267 view `eip712Domain`. Every other function is @internal: the book decides
        who may fill (its engine) and who may cancel (it passes msg.sender as `caller` /
        `maker`).

        A maker signs the EIP-712 typed data

            Order(address maker,uint256 series_id,bool is_buy,uint256 size,uint256 price,
                  uint256 nonce,uint256 deadline)

        (one line in the type string) under the domain {name: "Kappa", version: "1", chainId:
        chain.id, verifyingContract: the contract that initializes this module (OrderBook)}. `size` is in wad units of the underlying and
        `price` is the premium per unit (wad); this module does not interpret them beyond
        `size` bounding the total fill.

        Chain id: the separator is cached (immutables) with the chain id and address it was
        built for, and rebuilt at call time whenever chain.id (a fork) or self (a delegatecall
        proxy) differs, so a signature never replays across chains or books.

        Fills are tracked per order digest: filled[hash] never exceeds the order's size. A
        maker cancels one order (cancelled[hash]) or every nonce below a value (min_nonce).

        Signatures: 65 bytes r || s || v, v in {27, 28}, s <= secp256k1n / 2 (EIP-2), so a
        signature has exactly one valid encoding.
        EIP-1271 (contract) signatures are not supported in this version: makers are EOAs.
"""

struct Order:
    # The signer, whose account takes the other side of the taker.
    maker: address
    # The engine's series id: an option series, or positions.PERP_ID for the perp.
    series_id: uint256
    # True if the maker buys the option (the taker sells).
    is_buy: bool
    # Largest total fill, wad units of underlying.
    size: uint256
    # Premium per unit of underlying, wad of the cash asset.
    price: uint256
    # Any value >= min_nonce[maker]; need not be unique (the digest identifies the order).
    nonce: uint256
    # Last valid timestamp (inclusive), unix seconds.
    deadline: uint256

event OrderFilled:
    order_hash: indexed(bytes32)
    maker: indexed(address)
    amount: uint256
    filled_total: uint256

event OrderCancelled:
    order_hash: indexed(bytes32)
    maker: indexed(address)

event NoncesCancelled:
    maker: indexed(address)
    min_nonce: uint256

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
ORDER_TYPEHASH: constant(bytes32) = keccak256(
    "Order(address maker,uint256 series_id,bool is_buy,uint256 size,uint256 price,uint256 nonce,uint256 deadline)"
)
NAME: constant(String[5]) = "Kappa"
VERSION: constant(String[1]) = "1"
NAME_HASH: constant(bytes32) = keccak256(NAME)
VERSION_HASH: constant(bytes32) = keccak256(VERSION)
# secp256k1n / 2 (rounded down): EIP-2's upper bound on s.
SECP256K1N_HALF: constant(uint256) = (
    57896044618658097711785492504343953926418782139537452191302581570759080747168
)

# Total amount filled per order digest; never above the order's size.
filled: public(HashMap[bytes32, uint256])
# Orders cancelled one by one, by digest.
cancelled: public(HashMap[bytes32, bool])
# Every order of a maker with nonce < min_nonce[maker] is cancelled.
min_nonce: public(HashMap[address, uint256])

_CACHED_DOMAIN_SEPARATOR: immutable(bytes32)
_CACHED_CHAIN_ID: immutable(uint256)
_CACHED_SELF: immutable(address)


@deploy
def __init__():
    """
    @notice Cache the domain separator for the deploying chain and this contract's address.
    @dev The initializing contract must call `orders.__init__()` in its own constructor.
    """
    _CACHED_CHAIN_ID = chain.id
    _CACHED_SELF = self
    _CACHED_DOMAIN_SEPARATOR = self._build_domain_separator()


@external
@view
def eip712Domain() -> (bytes1, String[5], String[1], uint256, address, bytes32, DynArray[uint256, 1]):
    """
    @notice EIP-5267: the fields of the EIP-712 domain, for wallets to build the typed data.
    @dev 0x0f marks name, version, chainId and verifyingContract as used; no salt, no extensions.
    @return (fields, name, version, chainId, verifyingContract, salt, extensions).
    """
    return (0x0f, NAME, VERSION, chain.id, self, empty(bytes32), empty(DynArray[uint256, 1]))


@internal
@view
def domain_separator() -> bytes32:
    """
    @notice The EIP-712 domain separator for the current chain id and this contract.
    @dev The deploy-time value while chain.id and self are unchanged; otherwise rebuilt.
    @return keccak256(abi_encode(DOMAIN_TYPEHASH, keccak256("Kappa"), keccak256("1"), chain.id,
            self)).
    """
    if chain.id == _CACHED_CHAIN_ID and self == _CACHED_SELF:
        return _CACHED_DOMAIN_SEPARATOR
    return self._build_domain_separator()


@internal
@pure
def struct_hash(order: Order) -> bytes32:
    """
    @notice The EIP-712 hashStruct of an order.
    @param order The order.
    @return keccak256(abi_encode(ORDER_TYPEHASH, maker, series_id, is_buy, size, price, nonce,
            deadline)).
    """
    return keccak256(
        abi_encode(
            ORDER_TYPEHASH,
            order.maker,
            order.series_id,
            order.is_buy,
            order.size,
            order.price,
            order.nonce,
            order.deadline,
        )
    )


@internal
@view
def order_hash(order: Order) -> bytes32:
    """
    @notice The EIP-712 digest of an order: what the maker signs and what fills are keyed by.
    @param order The order.
    @return keccak256("\x19\x01" || domain_separator() || struct_hash(order)).
    """
    return keccak256(concat(b"\x19\x01", self.domain_separator(), self.struct_hash(order)))


@internal
def fill(order: Order, signature: Bytes[65], amount: uint256) -> (bytes32, uint256):
    """
    @notice Record a fill of `amount` against a signed order; return its digest and new total.
    @dev Checks in this order: "orders: zero amount"; "orders: expired" if block.timestamp >
         deadline; "orders: nonce cancelled" if nonce < min_nonce[maker]; "orders: cancelled";
         "orders: overfill" if filled + amount > size; then the signature (see
         `_recover`): "orders: bad signature length", "orders: malleable signature",
         "orders: bad v", "orders: bad signature" unless it recovers to a non-zero maker.
         The signature is verified on every fill, not only the first.
         The engine applies the trade itself; this only bounds and records it.
         Emits OrderFilled.
    @param order The order as signed.
    @param signature 65 bytes r || s || v by order.maker over order_hash(order).
    @param amount Amount to fill, wad units of underlying (> 0).
    @return (the order's EIP-712 digest, its total filled amount after this fill).
    """
    assert amount != 0, "orders: zero amount"
    assert block.timestamp <= order.deadline, "orders: expired"
    assert order.nonce >= self.min_nonce[order.maker], "orders: nonce cancelled"
    digest: bytes32 = self.order_hash(order)
    assert not self.cancelled[digest], "orders: cancelled"
    total: uint256 = self.filled[digest]
    # Invariant filled[digest] <= size (only this function writes it, after this check): the
    # subtraction cannot underflow, and amount <= size - total makes the sum below <= size.
    assert amount <= unsafe_sub(order.size, total), "orders: overfill"
    signer: address = self._recover(digest, signature)
    assert signer == order.maker and signer != empty(address), "orders: bad signature"
    total = unsafe_add(total, amount)
    self.filled[digest] = total
    log OrderFilled(order_hash=digest, maker=order.maker, amount=amount, filled_total=total)
    return digest, total


@internal
def cancel(order: Order, caller: address) -> bytes32:
    """
    @notice Cancel one order: no further fill of it is accepted.
    @dev Reverts "orders: not maker" unless caller == order.maker. Idempotent (cancelling a
         cancelled or fully filled order is allowed and logs again). Emits OrderCancelled.
    @param order The order as signed.
    @param caller Who asks (the book passes msg.sender).
    @return The order's digest.
    """
    assert caller == order.maker, "orders: not maker"
    digest: bytes32 = self.order_hash(order)
    self.cancelled[digest] = True
    log OrderCancelled(order_hash=digest, maker=order.maker)
    return digest


@internal
def cancel_all_below(maker: address, nonce: uint256):
    """
    @notice Cancel every order of `maker` whose nonce is below `nonce`.
    @dev Reverts "orders: nonce not increasing" unless nonce > min_nonce[maker]; the floor never
         goes down, so a cancelled order can never be revived. The book passes msg.sender as
         maker. Emits NoncesCancelled.
    @param maker The maker whose orders are cancelled.
    @param nonce The new lowest valid nonce.
    """
    assert nonce > self.min_nonce[maker], "orders: nonce not increasing"
    self.min_nonce[maker] = nonce
    log NoncesCancelled(maker=maker, min_nonce=nonce)


@internal
@view
def _build_domain_separator() -> bytes32:
    """
    @notice Compute the EIP-712 domain separator for chain.id and self.
    @return The separator.
    """
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@internal
@pure
def _recover(digest: bytes32, signature: Bytes[65]) -> address:
    """
    @notice The signer of `digest`, or empty(address) if ecrecover fails.
    @dev Reverts "orders: bad signature length" unless 65 bytes, "orders: malleable signature"
         if s > secp256k1n / 2, "orders: bad v" unless v is 27 or 28.
    @param digest The signed digest.
    @param signature r (32 bytes) || s (32 bytes) || v (1 byte).
    @return The recovered address.
    """
    assert len(signature) == 65, "orders: bad signature length"
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    assert s <= SECP256K1N_HALF, "orders: malleable signature"
    assert v == 27 or v == 28, "orders: bad v"
    return ecrecover(digest, v, r, s)
