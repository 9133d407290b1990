# pragma version ~=0.4.3
"""
@title PerpEngineStub: what PerpBook reads of its engine, for tests only
@license MIT
@notice The engine's `risk_admin` (the deployer) and `oracle` (this contract, answering a
        price the test sets), so PerpBook's unit tests control the index price exactly, and
        the engine's calls into the book, forwarded as they are (for EVMs that cannot send a
        transaction from a contract's address). The real MarginEngine and OracleAggregator
        are tested against PerpBook in tests/unit/margin/test_perp_book.py as well.
"""

interface IPerpBook:
    def trade(buyer: address, seller: address, size: int256, price: int256, spot: int256) -> (int256, int256): nonpayable
    def settle(account: address, spot: int256) -> int256: nonpayable
    def move(source: address, target: address, fraction: uint256, spot: int256) -> (int256, int256): nonpayable


risk_admin: public(address)
spot: public(uint256)
book: public(IPerpBook)


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


@external
def set_book(book: IPerpBook):
    """
    @notice The book the forwarding calls go to.
    @param book The PerpBook.
    """
    self.book = book


@external
def trade(buyer: address, seller: address, size: int256, price: int256, spot: int256) -> (int256, int256):
    """
    @notice PerpBook.trade, sent by this engine.
    @param buyer The buying account.
    @param seller The selling account.
    @param size Units, a wad.
    @param price The fill price, a wad.
    @param spot The index price, a wad.
    @return The two cash amounts.
    """
    return extcall self.book.trade(buyer, seller, size, price, spot)


@external
def settle(account: address, spot: int256) -> int256:
    """
    @notice PerpBook.settle, sent by this engine.
    @param account The account.
    @param spot The index price, a wad.
    @return The cash amount.
    """
    return extcall self.book.settle(account, spot)


@external
def move(source: address, target: address, fraction: uint256, spot: int256) -> (int256, int256):
    """
    @notice PerpBook.move, sent by this engine.
    @param source The liquidated account.
    @param target The bidder.
    @param fraction A wad.
    @param spot The index price, a wad.
    @return The two cash amounts.
    """
    return extcall self.book.move(source, target, fraction, spot)
