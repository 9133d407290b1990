# pragma version ~=0.4.3
# pragma optimize gas
"""
@title OrderBook: the margin engine's signed orders, their fills and cancellations
@license MIT
@notice Verifies and records EIP-712 orders (contracts/margin/orders.vy) for one MarginEngine,
        which is its only filler: the engine checks who the taker is, applies the trade and
        then the margin rule, and asks this book to bound and record the fill in the same
        transaction. Makers cancel here, directly.

        The EIP-712 domain's verifyingContract is this book (the contract that verifies the
        signature), so keepers sign against its address (keeper/orders.py) and a signature
        for one deployment never fills on another. It is a contract of its own, not a module
        of the engine, so that the engine stays under EIP-170 with perps.
"""

from contracts.margin import orders

initializes: orders

exports: (orders.filled, orders.cancelled, orders.min_nonce, orders.eip712Domain)

ENGINE: public(immutable(address))


@deploy
def __init__(engine: address):
    """
    @notice A book for `engine`, its only filler.
    @dev Reverts "orders: no engine" for the zero address.
    @param engine The MarginEngine.
    """
    assert engine != empty(address), "orders: no engine"
    ENGINE = engine
    orders.__init__()


@external
def fill(order: orders.Order, signature: Bytes[65], amount: uint256) -> bytes32:
    """
    @notice Bound and record a fill of `amount` against a maker's signed order (the engine).
    @dev Reverts "orders: not engine", and orders.fill's reasons (zero amount, expired, nonce
         cancelled, cancelled, overfill, the signature's). Emits OrderFilled.
    @param order The order as signed.
    @param signature 65 bytes r || s || v by order.maker over order_hash(order).
    @param amount Amount to fill, wad units of underlying.
    @return The order's EIP-712 digest.
    """
    assert msg.sender == ENGINE, "orders: not engine"
    return orders.fill(order, signature, amount)[0]


@external
def cancel(order: orders.Order) -> bytes32:
    """
    @notice Cancel one of the caller's orders: no further fill of it is accepted.
    @dev Reverts "orders: not maker" unless the caller is the order's maker. Emits
         OrderCancelled.
    @param order The order as signed.
    @return The order's digest.
    """
    return orders.cancel(order, msg.sender)


@external
def cancel_all_below(nonce: uint256):
    """
    @notice Cancel every order of the caller whose nonce is below `nonce`.
    @dev Reverts "orders: nonce not increasing" unless above the caller's current floor. Emits
         NoncesCancelled.
    @param nonce The new lowest valid nonce.
    """
    orders.cancel_all_below(msg.sender, nonce)


@external
@view
def order_hash(order: orders.Order) -> bytes32:
    """
    @notice The EIP-712 digest of an order under this book's domain: what the maker signs.
    @param order The order.
    @return The digest.
    """
    return orders.order_hash(order)
