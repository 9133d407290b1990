# pragma version ~=0.4.3
"""
@title PerpHarness: the perp module behind external wrappers, for tests only
@license MIT
@notice Exposes contracts/margin/perp.vy's functions as they are, and keeps one perp market and
        its accounts in storage the way an engine would (the market in two words, each
        position in two words, a signed cash balance per account), so the golden sequence
        replays fills, time and settlements through the packing too. No tokens, no margin.
"""

from contracts.margin import perp

market_words: public(uint256[2])
position_words: public(HashMap[address, uint256[2]])
cash: public(HashMap[address, int256])


@external
def list_perp(band: uint256, half_life: uint256, convergence_hours: uint256, max_rate: uint256):
    """
    @notice Start the stored market at block.timestamp with these parameters.
    @param band Fill band, a wad.
    @param half_life EMA half-life, seconds.
    @param convergence_hours Funding convergence, hours.
    @param max_rate Largest funding rate per hour, a wad.
    """
    self.market_words = perp.pack_market(
        perp.new_market(perp.pack_params(band, half_life, convergence_hours, max_rate), block.timestamp)
    )


@external
def fill(buyer: address, seller: address, size: int256, price: int256, spot: int256):
    """
    @notice A fill of `size` units at `price` between two stored accounts, as an engine would
            do it: the mark and funding move, both positions settle and change, the buyer pays
            the seller size * (price - spot).
    @param buyer The buying account.
    @param seller The selling account.
    @param size Units traded, > 0.
    @param price The fill price, a wad.
    @param spot The index price, a wad.
    """
    assert buyer != seller, "harness: self trade"
    assert size > 0, "harness: size"
    m: perp.Market = perp.fill(perp.unpack_market(self.market_words), price, spot, block.timestamp)
    self.market_words = perp.pack_market(m)
    self._trade(buyer, size, spot, m.index)
    self._trade(seller, -size, spot, m.index)
    payment: int256 = perp.fill_payment(size, price, spot)
    self.cash[buyer] -= payment
    self.cash[seller] += payment


@external
def settle(account: address, spot: int256) -> int256:
    """
    @notice settle_perp(account): accrue funding, settle the stored position into cash.
    @param account The account.
    @param spot The index price, a wad.
    @return The cash credited (negative: paid).
    """
    m: perp.Market = perp.accrue(perp.unpack_market(self.market_words), spot, block.timestamp)
    self.market_words = perp.pack_market(m)
    p: perp.Position = empty(perp.Position)
    amount: int256 = 0
    p, amount = perp.settle(perp.unpack_position(self.position_words[account]), spot, m.index)
    self.position_words[account] = perp.pack_position(p)
    self.cash[account] += amount
    return amount


@external
def set_params(band: uint256, half_life: uint256, convergence_hours: uint256, max_rate: uint256, spot: int256):
    """
    @notice New parameters for the stored market (funding accrued under the old ones first).
    @param band Fill band, a wad.
    @param half_life EMA half-life, seconds.
    @param convergence_hours Funding convergence, hours.
    @param max_rate Largest funding rate per hour, a wad.
    @param spot The index price, a wad.
    """
    self.market_words = perp.pack_market(perp.set_params(
        perp.unpack_market(self.market_words),
        perp.pack_params(band, half_life, convergence_hours, max_rate), spot, block.timestamp,
    ))


@external
@view
def market() -> perp.Market:
    """
    @notice The stored market, unpacked.
    @return The market.
    """
    return perp.unpack_market(self.market_words)


@external
@view
def position(account: address) -> perp.Position:
    """
    @notice An account's stored position, unpacked.
    @param account The account.
    @return The position.
    """
    return perp.unpack_position(self.position_words[account])


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


@internal
def _trade(account: address, delta: int256, spot: int256, index: int256):
    """
    @notice Settle an account's stored position and change its size by `delta`.
    @param account The account.
    @param delta Size bought (> 0) or sold (< 0).
    @param spot The index price.
    @param index The funding index accrued to now.
    """
    p: perp.Position = empty(perp.Position)
    amount: int256 = 0
    p, amount = perp.trade(perp.unpack_position(self.position_words[account]), delta, spot, index)
    self.position_words[account] = perp.pack_position(p)
    self.cash[account] += amount
