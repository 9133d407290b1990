# pragma version ~=0.4.3
# pragma optimize gas
"""
@title PerpBook: the perpetual future on the engine's underlying, its market and positions
@license MIT
@notice Keeps the perp's market (the mark's EMA premium, the funding index, the parameters) in
        two words and every account's position (q, P, F0) in two words, and applies
        contracts/margin/perp.vy's rules to them (docs/perps.md). It holds no tokens and no
        cash: every state change returns the cash amounts it settled, and its one writer, the
        MarginEngine, applies them to the accounts' interest-bearing cash in the same
        transaction. The engine also passes the index price it read from the oracle, so a
        trade and the margin check that follows it use one price.

        Roles are the engine's: the engine's `risk_admin` lists the perp once and sets its
        parameters, and a parameter change reads the index price from the engine's oracle
        itself (funding up to the change accrues at that price), so no caller supplies a
        price except the engine.

        Every event carries the index price and the time the rule used, so a mirror rebuilds
        every word from the logs (keeper/perp.py `PerpBook`), and the cash amounts double as
        checks. `open_interest` is the long side's total size; the short side's equals it
        (each trade moves both sides by the same size).
"""

from contracts.margin import perp
from contracts.math import wad
from contracts.interfaces import IOracleAggregator


interface IEngine:
    def risk_admin() -> address: view
    def oracle() -> address: view


ENGINE: public(immutable(address))

listed: public(bool)
market_words: public(uint256[2])
position_words: public(HashMap[address, uint256[2]])
open_interest: public(uint256)


event PerpListed:
    params: uint256
    time: uint256

event PerpParamsSet:
    params: uint256
    spot: int256
    time: uint256

event PerpFill:
    buyer: indexed(address)
    seller: indexed(address)
    size: int256
    price: int256
    spot: int256
    time: uint256
    buyer_cash: int256
    seller_cash: int256

event PerpSettled:
    account: indexed(address)
    spot: int256
    time: uint256
    cash: int256

event PerpMoved:
    source: indexed(address)
    target: indexed(address)
    size: int256
    spot: int256
    time: uint256
    source_cash: int256
    target_cash: int256


@deploy
def __init__(engine: address):
    """
    @notice A book for `engine`, its only writer (its risk admin lists the perp).
    @param engine The MarginEngine.
    """
    assert engine != empty(address), "perp: no engine"
    ENGINE = engine


# ---------------------------------------------------------------------------------------------
# The risk admin


@external
def list_perp(band: uint256, half_life: uint256, convergence_hours: uint256, max_rate: uint256):
    """
    @notice List the perp at block.timestamp: premium 0, funding index 0 (the engine's risk
            admin, once).
    @dev Reverts "engine: bad perp params" outside perp.vy's hard bounds.
    @param band Fill band around the index, a wad (whole basis points).
    @param half_life The mark EMA's half-life, seconds.
    @param convergence_hours Hours over which funding closes the premium.
    @param max_rate Largest funding rate per hour, a wad (whole millionths).
    """
    self._only_risk_admin()
    assert not self.listed, "perp: listed"
    params: uint256 = perp.pack_params(band, half_life, convergence_hours, max_rate)
    self.listed = True
    self.market_words = perp.pack_market(perp.new_market(params, block.timestamp))
    log PerpListed(params=params, time=block.timestamp)


@external
def set_params(band: uint256, half_life: uint256, convergence_hours: uint256, max_rate: uint256):
    """
    @notice New parameters (the engine's risk admin): funding accrues to now under the old
            ones at the oracle's price, then the premium is clamped into the new band.
    @param band Fill band around the index, a wad (whole basis points).
    @param half_life The mark EMA's half-life, seconds.
    @param convergence_hours Hours over which funding closes the premium.
    @param max_rate Largest funding rate per hour, a wad (whole millionths).
    """
    self._only_risk_admin()
    m: perp.Market = self._market()
    params: uint256 = perp.pack_params(band, half_life, convergence_hours, max_rate)
    spot: uint256 = 0
    confidence: uint256 = 0
    oldest: uint256 = 0
    spot, confidence, oldest = staticcall IOracleAggregator(staticcall IEngine(ENGINE).oracle()).price()
    s: int256 = convert(spot, int256)  # perp.set_params checks it within (0, 1e36]
    self.market_words = perp.pack_market(perp.set_params(m, params, s, block.timestamp))
    log PerpParamsSet(params=params, spot=s, time=block.timestamp)


# ---------------------------------------------------------------------------------------------
# The engine


@external
def trade(buyer: address, seller: address, size: int256, price: int256, spot: int256) -> (int256, int256):
    """
    @notice A fill of `size` units at `price` (the engine): funding accrues, the mark moves,
            both positions settle at the index and change by the size, and the buyer pays the
            seller size * (price - spot).
    @dev Reverts "engine: perp price outside band", "engine: perp size too large" and as
         perp.fill. The amounts returned sum to the two settlements' sum (the payment
         cancels), at most 0.
    @param buyer The buying account.
    @param seller The selling account.
    @param size Units traded, > 0 (a wad).
    @param price The fill price, a wad.
    @param spot The index price the engine read, a wad.
    @return (the buyer's cash, the seller's cash): negative means the account pays.
    """
    self._only_engine()
    assert buyer != seller, "perp: self trade"
    assert size > 0, "perp: size"
    m: perp.Market = perp.fill(self._market(), price, spot, block.timestamp)
    self.market_words = perp.pack_market(m)
    payment: int256 = perp.fill_payment(size, price, spot)
    buyer_cash: int256 = self._trade(buyer, size, spot, m.index) - payment
    seller_cash: int256 = self._trade(seller, -size, spot, m.index) + payment
    log PerpFill(
        buyer=buyer, seller=seller, size=size, price=price, spot=spot, time=block.timestamp,
        buyer_cash=buyer_cash, seller_cash=seller_cash,
    )
    return buyer_cash, seller_cash


@external
def settle(account: address, spot: int256) -> int256:
    """
    @notice Settle an account's position into cash (the engine, for settle_perp and before
            every margin-changing touch): funding accrues, the position settles at the index.
            An account without a position settles to 0 and changes nothing (no accrual, no
            event), so the engine can settle every account it touches for two reads.
    @param account The account.
    @param spot The index price the engine read, a wad.
    @return The cash to credit: negative means the account pays.
    """
    self._only_engine()
    assert self.listed, "perp: not listed"
    if perp.unpack_position(self.position_words[account]).size == 0:
        return 0
    m: perp.Market = self._accrued(spot)
    cash: int256 = self._trade(account, 0, spot, m.index)
    log PerpSettled(account=account, spot=spot, time=block.timestamp, cash=cash)
    return cash


@external
def move(source: address, target: address, fraction: uint256, spot: int256) -> (int256, int256):
    """
    @notice Move `fraction` of the source's position to the target at the index (the engine,
            for a liquidation): funding accrues, both positions settle, then
            q_source * fraction (rounded toward zero) passes from source to target with no
            payment, since both settled at the index just before.
    @dev Rounding toward zero leaves any sub-wei remainder with the source. A source without
         a position moves nothing and changes nothing, so the engine calls this on every
         liquidation move.
    @param source The liquidated account.
    @param target The bidder.
    @param fraction The share of the position that moves, a wad in (0, 1e18].
    @param spot The index price the engine read, a wad.
    @return (the source's cash, the target's cash): the settlements.
    """
    self._only_engine()
    assert source != target, "perp: self trade"
    assert fraction > 0 and fraction <= 10**18, "perp: fraction"
    size: int256 = perp.unpack_position(self.position_words[source]).size
    if size == 0:
        # Nothing to move (also before the perp is listed): no accrual, no write, no event.
        return 0, 0
    m: perp.Market = self._accrued(spot)
    # |q| <= 2**96 and fraction <= 1e18: the product is below 2**157.
    moved: int256 = unsafe_div(unsafe_mul(size, convert(fraction, int256)), wad.WAD)
    source_cash: int256 = self._trade(source, -moved, spot, m.index)
    target_cash: int256 = self._trade(target, moved, spot, m.index)
    log PerpMoved(
        source=source, target=target, size=moved, spot=spot, time=block.timestamp,
        source_cash=source_cash, target_cash=target_cash,
    )
    return source_cash, target_cash


# ---------------------------------------------------------------------------------------------
# Views


@external
@view
def market() -> perp.Market:
    """
    @notice The stored market, unpacked (funding accrued to its last touch).
    @return The market.
    """
    return self._market()


@external
@view
def position(account: address) -> perp.Position:
    """
    @notice An account's stored position, unpacked (settled at its last touch).
    @param account The account.
    @return The position (q, P, F0); all zero for an account that never traded.
    """
    return perp.unpack_position(self.position_words[account])


@external
@view
def margin_terms(account: address, spot: int256) -> (int256, int256, int256):
    """
    @notice What the margin model needs of an account's perp at index price `spot` now: the
            size q, the price P of its last settlement and the funding it owes Phi (funding
            accrued to now, rounded up), so that its value is q * (S - P) - Phi.
    @param account The account.
    @param spot The index price, a wad.
    @return (q, P, Phi), wads.
    """
    p: perp.Position = perp.unpack_position(self.position_words[account])
    if p.size == 0:
        return 0, 0, 0
    index: int256 = perp.index_at(self._market(), spot, block.timestamp)
    return p.size, p.price, perp.funding_owed(p, index)


@external
@view
def mark(spot: int256) -> int256:
    """
    @notice The mark price S * (1 + pbar) at index price `spot`.
    @param spot The index price, a wad.
    @return The mark, a wad.
    """
    return perp.mark(self._market(), spot)


@external
@view
def funding_rate() -> int256:
    """
    @notice The funding rate per hour now: positive means longs pay shorts.
    @return The rate, a wad per hour.
    """
    return perp.funding_rate(self._market())


# ---------------------------------------------------------------------------------------------
# Internals


@internal
@view
def _only_engine():
    assert msg.sender == ENGINE, "perp: not the engine"


@internal
@view
def _only_risk_admin():
    assert msg.sender == staticcall IEngine(ENGINE).risk_admin(), "perp: not the risk admin"


@internal
@view
def _market() -> perp.Market:
    assert self.listed, "perp: not listed"
    return perp.unpack_market(self.market_words)


@internal
def _accrued(spot: int256) -> perp.Market:
    m: perp.Market = perp.accrue(self._market(), spot, block.timestamp)
    self.market_words = perp.pack_market(m)
    return m


@internal
def _trade(account: address, delta: int256, spot: int256, index: int256) -> int256:
    """
    @notice Settle an account's position, change its size by `delta`, keep open_interest.
    @dev A flat position that does not trade is left as it is: it settles to 0 whatever its
         stored price and index, so the engine can settle every account it touches for one
         read, and the next trade settles it at that trade's price and index first.
    @return The settlement cash.
    """
    old: perp.Position = perp.unpack_position(self.position_words[account])
    if old.size == 0 and delta == 0:
        return 0
    p: perp.Position = empty(perp.Position)
    cash: int256 = 0
    p, cash = perp.trade(old, delta, spot, index)
    self.position_words[account] = perp.pack_position(p)
    # Sizes are within +-2**96 (perp.trade), so the open interest stays below 2**256.
    self.open_interest = self.open_interest + convert(max(p.size, 0), uint256) - convert(max(old.size, 0), uint256)
    return cash
