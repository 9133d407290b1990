# pragma version ~=0.4.3
"""
@title PerpEngineStub: what PerpBook reads of its engine, for tests only
@license MIT
@notice The engine's `risk_admin` (the deployer) and `oracle` (this contract, answering a
        price the test sets), so PerpBook's unit tests control the index price exactly. The
        real MarginEngine and OracleAggregator are tested against PerpBook in
        tests/unit/margin/test_perp_book.py as well.
"""

risk_admin: public(address)
spot: public(uint256)


@deploy
def __init__():
    self.risk_admin = msg.sender


@external
def set_spot(spot: uint256):
    """
    @notice The price `price()` answers.
    @param spot A wad.
    """
    self.spot = spot


@external
@view
def oracle() -> address:
    """
    @notice This contract is its own oracle.
    @return This contract.
    """
    return self


@external
@view
def price() -> (uint256, uint256, uint256):
    """
    @notice The set price, full confidence, updated now.
    @return (price, confidence, oldest time).
    """
    return self.spot, 10**18, block.timestamp
