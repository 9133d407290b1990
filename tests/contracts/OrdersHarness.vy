# pragma version ~=0.4.3
"""
@title OrdersHarness: the orders module behind external wrappers, for tests only
@license MIT
@notice Initializes contracts/margin/orders.vy as the engine does and exposes its internal
        functions; msg.sender plays the engine's caller (canceller, nonce owner).
"""

from contracts.margin import orders

initializes: orders

exports: (orders.filled, orders.cancelled, orders.min_nonce, orders.eip712Domain)


@deploy
def __init__():
    """
    @notice Initialize the module (caches the domain separator).
    """
    orders.__init__()


@external
def fill(order: orders.Order, signature: Bytes[65], amount: uint256) -> uint256:
    """
    @notice orders.fill.
    @param order The order.
    @param signature 65-byte r || s || v.
    @param amount Amount to fill.
    @return The order's filled total.
    """
    return orders.fill(order, signature, amount)[1]


@external
def cancel(order: orders.Order) -> bytes32:
    """
    @notice orders.cancel with msg.sender as the caller.
    @param order The order.
    @return The order's digest.
    """
    return orders.cancel(order, msg.sender)


@external
def cancel_all_below(nonce: uint256):
    """
    @notice orders.cancel_all_below for msg.sender.
    @param nonce The new lowest valid nonce.
    """
    orders.cancel_all_below(msg.sender, nonce)


@external
@view
def order_hash(order: orders.Order) -> bytes32:
    """
    @notice orders.order_hash.
    @param order The order.
    @return The EIP-712 digest.
    """
    return orders.order_hash(order)


@external
@pure
def struct_hash(order: orders.Order) -> bytes32:
    """
    @notice orders.struct_hash.
    @param order The order.
    @return The EIP-712 hashStruct.
    """
    return orders.struct_hash(order)


@external
@view
def domain_separator() -> bytes32:
    """
    @notice orders.domain_separator.
    @return The EIP-712 domain separator.
    """
    return orders.domain_separator()
