# pragma version ~=0.4.3
"""
@title PerpHarness: the perp module behind external wrappers, for tests only
@license MIT
@notice Exposes contracts/margin/perp.vy's functions as they are. The stored market and its
        positions are contracts/margin/PerpBook.vy's (tests/unit/margin/test_perp_book.py).
"""

from contracts.margin import perp


@external
@pure
def pack_params(band: uint256, half_life: uint256, convergence_hours: uint256, max_rate: uint256) -> uint256:
    """
    @notice perp.pack_params.
    @param band Fill band, a wad.
    @param half_life EMA half-life, seconds.
    @param convergence_hours Funding convergence, hours.
    @param max_rate Largest funding rate per hour, a wad.
    @return The params lane.
    """
    return perp.pack_params(band, half_life, convergence_hours, max_rate)


@external
@pure
def read_params(params: uint256) -> (int256, uint256, uint256, int256):
    """
    @notice The readers of a params lane.
    @param params The params lane.
    @return (band, half_life, convergence_hours, max_rate).
    """
    return perp.band(params), perp.half_life(params), perp.convergence_hours(params), perp.max_rate(params)


@external
@pure
def new_market(params: uint256, now: uint256) -> perp.Market:
    """
    @notice perp.new_market.
    @param params The params lane.
    @param now The listing time.
    @return The market.
    """
    return perp.new_market(params, now)


@external
@pure
def funding_rate(market: perp.Market) -> int256:
    """
    @notice perp.funding_rate.
    @param market The market.
    @return The rate per hour, a wad.
    """
    return perp.funding_rate(market)


@external
@pure
def index_at(market: perp.Market, spot: int256, now: uint256) -> int256:
    """
    @notice perp.index_at.
    @param market The market.
    @param spot The index price.
    @param now The time.
    @return F at now.
    """
    return perp.index_at(market, spot, now)


@external
@pure
def accrue(market: perp.Market, spot: int256, now: uint256) -> perp.Market:
    """
    @notice perp.accrue.
    @param market The market.
    @param spot The index price.
    @param now The time.
    @return The market.
    """
    return perp.accrue(market, spot, now)


@external
@pure
def weight(dt: uint256, half_life: uint256) -> int256:
    """
    @notice perp.weight.
    @param dt Seconds since the previous fill.
    @param half_life The half-life, seconds.
    @return The weight, a wad.
    """
    return perp.weight(dt, half_life)


@external
@pure
def premium_of(price: int256, spot: int256, band: int256) -> int256:
    """
    @notice perp.premium_of.
    @param price The fill price.
    @param spot The index price.
    @param band The band, a wad.
    @return The premium, a wad.
    """
    return perp.premium_of(price, spot, band)


@external
@pure
def fill_market(market: perp.Market, price: int256, spot: int256, now: uint256) -> perp.Market:
    """
    @notice perp.fill.
    @param market The market.
    @param price The fill price.
    @param spot The index price.
    @param now The time.
    @return The market.
    """
    return perp.fill(market, price, spot, now)


@external
@pure
def set_market_params(market: perp.Market, params: uint256, spot: int256, now: uint256) -> perp.Market:
    """
    @notice perp.set_params.
    @param market The market.
    @param params The new params lane.
    @param spot The index price.
    @param now The time.
    @return The market.
    """
    return perp.set_params(market, params, spot, now)


@external
@pure
def mark(market: perp.Market, spot: int256) -> int256:
    """
    @notice perp.mark.
    @param market The market.
    @param spot The index price.
    @return The mark, a wad.
    """
    return perp.mark(market, spot)


@external
@pure
def settle_position(position: perp.Position, spot: int256, index: int256) -> (perp.Position, int256):
    """
    @notice perp.settle.
    @param position The position.
    @param spot The index price.
    @param index The funding index.
    @return (position, cash).
    """
    return perp.settle(position, spot, index)


@external
@pure
def trade(position: perp.Position, delta: int256, spot: int256, index: int256) -> (perp.Position, int256):
    """
    @notice perp.trade.
    @param position The position.
    @param delta Size change.
    @param spot The index price.
    @param index The funding index.
    @return (position, cash).
    """
    return perp.trade(position, delta, spot, index)


@external
@pure
def funding_owed(position: perp.Position, index: int256) -> int256:
    """
    @notice perp.funding_owed.
    @param position The position.
    @param index The funding index.
    @return Phi, a wad.
    """
    return perp.funding_owed(position, index)


@external
@pure
def fill_payment(size: int256, price: int256, spot: int256) -> int256:
    """
    @notice perp.fill_payment.
    @param size The size.
    @param price The fill price.
    @param spot The index price.
    @return The buyer's payment, a wad.
    """
    return perp.fill_payment(size, price, spot)


@external
@pure
def pack_market(market: perp.Market) -> uint256[2]:
    """
    @notice perp.pack_market.
    @param market The market.
    @return Its words.
    """
    return perp.pack_market(market)


@external
@pure
def unpack_market(words: uint256[2]) -> perp.Market:
    """
    @notice perp.unpack_market.
    @param words The words.
    @return The market.
    """
    return perp.unpack_market(words)


@external
@pure
def pack_position(position: perp.Position) -> uint256[2]:
    """
    @notice perp.pack_position.
    @param position The position.
    @return Its words.
    """
    return perp.pack_position(position)


@external
@pure
def unpack_position(words: uint256[2]) -> perp.Position:
    """
    @notice perp.unpack_position.
    @param words The words.
    @return The position.
    """
    return perp.unpack_position(words)
