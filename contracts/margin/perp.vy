# pragma version ~=0.4.3
# pragma optimize gas
"""
@title perp: the perpetual future's rules (position, settlement, mark, funding), pure
@license MIT
@notice DESIGN.md "Perpetual futures"; the decisions and the manipulation bounds are in
        docs/perps.md, and keeper/perp.py is the Python twin (the same integers).

        Position (q, P, F0): signed size q (units, wad), the index price P of its last
        settlement and the funding index F0 then. Every touch settles into cash
            q * (S - P) - q * (F - F0)
        rounded toward -infinity (what the account receives rounds down, what it pays up),
        then P = S, F0 = F. A fill at price X also moves q * (X - S) between its two sides
        (`fill_payment`, rounded up for whoever pays, the same amount to the other side).

        Mark: the EMA of fill premiums x = (X - S) / S, each fill's price within the band
        |X - S| <= band * S (so |x| <= band), and M = S * (1 + pbar). The EMA is
        time-weighted: a fill `dt` seconds after the previous one moves pbar toward x by the
        weight w(dt) = 1 - 2^(-min(dt, half_life) / half_life), so fills in the same block
        after the first weigh nothing and one fill weighs at most w(half_life) ~ 1/2.
        Premiums rather than absolute prices, so that an index move without fills never
        reads as a premium.

        Funding: the rate per hour r = clamp(pbar / convergence_hours, -max_rate, max_rate),
        accrued per second into the index F (USD per unit of the underlying): over dt
        seconds F += clamp(pbar * S / convergence_hours, -max_rate * S, max_rate * S) * dt /
        3600, rounded toward zero (never more than the clamp). Longs pay shorts when r > 0.
        Both sides of every unit read the same F, so funding is zero-sum before the
        settlement's rounding, which only takes from accounts.

        Storage (how an engine keeps it): the market in two words, each account's position in
        two words:
            market word 0:   pbar + 2**63 (64 bits) | mark_time << 64 (40) |
                             funding_time << 104 (40) | params << 144 (50)
            market word 1:   F, two's complement
            position word 0: q + 2**127 (128 bits) | P << 128 (128)
            position word 1: F0, two's complement
        params: band in basis points (11 bits) | max_rate in millionths per hour << 11 (14)
        | half_life in seconds << 25 (17) | convergence_hours << 42 (8).

        Hard bounds (stated once, here): band in [0.001, 0.2], whole basis points; max_rate
        in [0, 0.01] per hour, whole millionths; half_life in [60 s, 1 day]; convergence_hours
        in [1, 168]. Index prices and fill prices in (0, 1e36]; |q| <= 2**96; times below
        2**40.

        Arithmetic bounds (every unchecked step cites one of these):
            |pbar| <= band <= 2e17 < 2**58; S <= 1e36 < 2**120; max_rate <= 1e16 < 2**54;
            dt < 2**40; so |pbar * S| < 2**178, max_rate * S < 2**174 and their product
            with dt below 2**218. Per accrual |dF| <= max_rate * S * dt / 3.6e21, and the
            accruals' dt sum to below 2**40, so |F| < 1e16 * 1e36 * 2**40 / 3.6e21 < 2**142
            and |F - F0| < 2**143; with |S - P| < 2**120 and |q| <= 2**96 the settlement
            product is below 2**96 * 2**144 = 2**240.
"""

from contracts.math import wad

WAD: constant(int256) = wad.WAD
HOUR: constant(uint256) = 3600
# floor(ln 2 * 1e18): the exponent of 2^-f rounds toward zero, so the weight rounds down.
LN2_WAD: constant(int256) = 693147180559945309

BP: constant(uint256) = 10**14
MILLIONTH: constant(uint256) = 10**12
MIN_BAND_BP: constant(uint256) = 10
MAX_BAND_BP: constant(uint256) = 2_000
MAX_RATE_MILLIONTHS: constant(uint256) = 10_000
MIN_HALF_LIFE: constant(uint256) = 60
MAX_HALF_LIFE: constant(uint256) = 86_400
MAX_CONVERGENCE_HOURS: constant(uint256) = 168

MAX_PRICE: constant(int256) = 10**36
MAX_SIZE: constant(int256) = 2**96
MAX_TIME: constant(uint256) = 2**40 - 1

PREMIUM_OFFSET: constant(int256) = 2**63
SIZE_OFFSET: constant(int256) = 2**127
MASK_40: constant(uint256) = 2**40 - 1
MASK_64: constant(uint256) = 2**64 - 1
MASK_128: constant(uint256) = 2**128 - 1


struct Market:
    # The EMA premium pbar (wad, |pbar| <= band).
    premium: int256
    # Time of the last fill that moved the mark, and of the last funding accrual (seconds).
    mark_time: uint256
    funding_time: uint256
    # The funding index F (USD per unit, wad), accrued to funding_time.
    index: int256
    # The packed parameters (`pack_params`).
    params: uint256


struct Position:
    # Signed size q in units (wad; long > 0), the index price P of the last settlement (wad)
    # and the funding index F0 at the last settlement.
    size: int256
    price: int256
    index: int256


@internal
@pure
def pack_params(band: uint256, half_life: uint256, convergence_hours: uint256, max_rate: uint256) -> uint256:
    """
    @notice Check the perp parameters against the hard bounds and pack them into 50 bits.
    @dev Reverts "engine: bad perp params" outside the bounds of the module notice or when band
         is not a whole number of basis points or max_rate not a whole millionth.
    @param band Largest relative distance of a fill price from the index, a wad.
    @param half_life Half-life of the mark's EMA, seconds.
    @param convergence_hours Hours over which funding would close the premium.
    @param max_rate Largest funding rate per hour, a wad.
    @return The params lane.
    """
    assert (
        band % BP == 0 and band >= MIN_BAND_BP * BP and band <= MAX_BAND_BP * BP
        and max_rate % MILLIONTH == 0 and max_rate <= MAX_RATE_MILLIONTHS * MILLIONTH
        and half_life >= MIN_HALF_LIFE and half_life <= MAX_HALF_LIFE
        and convergence_hours >= 1 and convergence_hours <= MAX_CONVERGENCE_HOURS
    ), "engine: bad perp params"
    # Each field is below its lane's width by the bounds just checked.
    return band // BP | (max_rate // MILLIONTH) << 11 | half_life << 25 | convergence_hours << 42


@internal
@pure
def band(params: uint256) -> int256:
    """
    @notice The band of a params lane.
    @param params The params lane.
    @return band, a wad.
    """
    return convert((params & 2047) * BP, int256)


@internal
@pure
def max_rate(params: uint256) -> int256:
    """
    @notice The largest funding rate per hour of a params lane.
    @param params The params lane.
    @return max_rate, a wad per hour.
    """
    return convert(((params >> 11) & 16383) * MILLIONTH, int256)


@internal
@pure
def half_life(params: uint256) -> uint256:
    """
    @notice The mark's EMA half-life of a params lane.
    @param params The params lane.
    @return Seconds.
    """
    return (params >> 25) & 131071


@internal
@pure
def convergence_hours(params: uint256) -> uint256:
    """
    @notice The convergence time of a params lane.
    @param params The params lane.
    @return Hours.
    """
    return (params >> 42) & 255


@internal
@pure
def new_market(params: uint256, now: uint256) -> Market:
    """
    @notice A fresh market at `now`: premium 0, funding index 0.
    @param params A params lane from `pack_params`.
    @param now The listing time (< 2**40).
    @return The market.
    """
    assert now <= MAX_TIME, "engine: perp time out of range"
    return Market(premium=0, mark_time=now, funding_time=now, index=0, params=params)


@internal
@pure
def check_index(spot: int256):
    """
    @notice Revert "engine: perp index out of range" unless 0 < spot <= 1e36.
    @param spot The index price S, a wad.
    """
    assert spot > 0 and spot <= MAX_PRICE, "engine: perp index out of range"


@internal
@pure
def funding_rate(market: Market) -> int256:
    """
    @notice The funding rate per hour, clamp(pbar / convergence_hours, -max_rate, max_rate).
    @dev Rounded toward zero. Positive: longs pay shorts.
    @param market The market.
    @return The rate, a wad per hour.
    """
    cap: int256 = self.max_rate(market.params)
    # |pbar| < 2**58 and convergence_hours >= 1.
    r: int256 = unsafe_div(market.premium, convert(self.convergence_hours(market.params), int256))
    return min(max(r, -cap), cap)


@internal
@pure
def index_at(market: Market, spot: int256, now: uint256) -> int256:
    """
    @notice The funding index F accrued to `now` at index price `spot`, without writing.
    @dev F + clamp(pbar * S / convergence_hours, -max_rate * S, max_rate * S) * dt / (3600 *
         1e18), the increment rounded toward zero. Reverts "engine: perp index out of range"
         for a bad spot and "engine: perp clock went back" when now < funding_time.
    @param market The market.
    @param spot The index price S, a wad.
    @param now The time to accrue to (< 2**40).
    @return F at `now`.
    """
    self.check_index(spot)
    assert now >= market.funding_time, "engine: perp clock went back"
    assert now <= MAX_TIME, "engine: perp time out of range"
    if now == market.funding_time:
        return market.index
    # Bounds of the module notice: |pbar * S| < 2**178, max_rate * S < 2**174, times dt < 2**40
    # below 2**218; convergence_hours >= 1.
    cap: int256 = unsafe_mul(self.max_rate(market.params), spot)
    per_hour: int256 = unsafe_div(unsafe_mul(market.premium, spot), convert(self.convergence_hours(market.params), int256))
    per_hour = min(max(per_hour, -cap), cap)
    dt: int256 = convert(unsafe_sub(now, market.funding_time), int256)
    # |F| < 2**142 and the increment below 2**179 (module notice): the sum fits (checked anyway).
    return market.index + unsafe_div(unsafe_mul(per_hour, dt), 3600 * WAD)


@internal
@pure
def accrue(market: Market, spot: int256, now: uint256) -> Market:
    """
    @notice The market with funding accrued to `now` at index price `spot` (see `index_at`).
    @param market The market.
    @param spot The index price S, a wad.
    @param now The block time (< 2**40).
    @return The market, funding_time = now.
    """
    m: Market = market
    m.index = self.index_at(market, spot, now)
    m.funding_time = now
    return m


@internal
@pure
def weight(dt: uint256, half_life_: uint256) -> int256:
    """
    @notice The EMA weight of a fill dt seconds after the previous one:
            1 - 2^(-min(dt, half_life) / half_life), rounded down.
    @dev 0 at dt = 0; at most w(half_life) = 1/2 (to a few wei). The exponent
         -ln2 * min(dt, h) / h lies in [-ln2, 0] and rounds toward zero, so exp_wad's result
         rounds up by at most its own half-wei and the weight never exceeds the exact one by
         more than a wei.
    @param dt Seconds since the previous fill.
    @param half_life_ The half-life, seconds (>= 60).
    @return w, a wad in [0, 0.5e18 + 1].
    """
    # min(dt, h) <= 86400: the product is below 2**77.
    f: int256 = convert(min(dt, half_life_), int256)
    x: int256 = -unsafe_div(unsafe_mul(LN2_WAD, f), convert(half_life_, int256))
    return WAD - wad.exp_wad(x)


@internal
@pure
def premium_of(price: int256, spot: int256, band_: int256) -> int256:
    """
    @notice A fill's premium (X - S) / S after checking X within the band of the index.
    @dev Reverts "engine: perp price outside band" unless |X - S| <= floor(band * S); the
         premium rounds toward zero, so |x| <= band.
    @param price The fill price X, a wad.
    @param spot The index price S (checked by the caller), a wad.
    @param band_ The band, a wad.
    @return x, a wad.
    """
    # band <= 2e17 and S <= 1e36: the product is below 2**178.
    width: int256 = unsafe_div(unsafe_mul(band_, spot), WAD)
    # |price| is unbounded here, so the difference is checked.
    gap: int256 = price - spot
    assert gap >= -width and gap <= width, "engine: perp price outside band"
    # |gap| <= width < 2**120: gap * 1e18 < 2**180.
    return unsafe_div(unsafe_mul(gap, WAD), spot)


@internal
@pure
def fill(market: Market, price: int256, spot: int256, now: uint256) -> Market:
    """
    @notice The market after a fill at `price`: funding accrued to `now` with the premium
            that held until now, then pbar += w(now - mark_time) * (x - pbar).
    @dev Reverts "engine: perp price outside band" (see `premium_of`) and as `accrue`. The
         step rounds toward zero (toward the old pbar), so pbar stays between the old pbar
         and x: |pbar| <= band, and one fill moves pbar by at most w * |x - pbar| <= 2 w band.
    @param market The market.
    @param price The fill price X, a wad.
    @param spot The index price S, a wad.
    @param now The block time.
    @return The new market.
    """
    m: Market = self.accrue(market, spot, now)
    x: int256 = self.premium_of(price, spot, self.band(m.params))
    # now >= funding_time >= mark_time (every fill sets both).
    w: int256 = self.weight(unsafe_sub(now, m.mark_time), self.half_life(m.params))
    # |x - pbar| <= 4e17 and w <= 1e18: the product is below 2**119.
    m.premium = unsafe_add(m.premium, unsafe_div(unsafe_mul(w, unsafe_sub(x, m.premium)), WAD))
    m.mark_time = now
    return m


@internal
@pure
def set_params(market: Market, params: uint256, spot: int256, now: uint256) -> Market:
    """
    @notice The market under new parameters: funding accrued to `now` under the old ones,
            then pbar clamped into the new band.
    @param market The market.
    @param params A params lane from `pack_params`.
    @param spot The index price S, a wad.
    @param now The block time.
    @return The new market.
    """
    m: Market = self.accrue(market, spot, now)
    b: int256 = self.band(params)
    m.premium = min(max(m.premium, -b), b)
    m.params = params
    return m


@internal
@pure
def mark(market: Market, spot: int256) -> int256:
    """
    @notice The mark price M = S * (1 + pbar), rounded toward S.
    @param market The market.
    @param spot The index price S (checked), a wad.
    @return M, a wad.
    """
    self.check_index(spot)
    # |pbar| < 2**58 and S <= 2**120.
    return unsafe_add(spot, unsafe_div(unsafe_mul(market.premium, spot), WAD))


@internal
@pure
def settle(position: Position, spot: int256, index: int256) -> (Position, int256):
    """
    @notice Settle a position at index price S and funding index F: the cash
            q * (S - P) - q * (F - F0), rounded toward -infinity, and the position with P = S,
            F0 = F.
    @dev A flat position (q = 0) settles to 0 and is reset all the same.
    @param position The position.
    @param spot The index price S (checked), a wad.
    @param index The funding index F accrued to now.
    @return (the settled position, the cash to credit: negative means the account pays).
    """
    self.check_index(spot)
    # Module notice: |S - P| < 2**120 and |F - F0| < 2**143, so the difference is below 2**144
    # and its product with |q| <= 2**96 below 2**240; floor_wad needs |product| < 2**254.
    move: int256 = unsafe_sub(unsafe_sub(spot, position.price), unsafe_sub(index, position.index))
    cash: int256 = wad.floor_wad(unsafe_mul(position.size, move))
    return Position(size=position.size, price=spot, index=index), cash


@internal
@pure
def funding_owed(position: Position, index: int256) -> int256:
    """
    @notice The unsettled funding Phi = q * (F - F0) a position owes (the margin model's term),
            rounded up: positive means the account pays.
    @param position The position.
    @param index The funding index F accrued to now.
    @return Phi, a wad.
    """
    # Module notice: |F - F0| < 2**143 and |q| <= 2**96.
    product: int256 = unsafe_mul(position.size, unsafe_sub(index, position.index))
    return -wad.floor_wad(-product)


@internal
@pure
def fill_payment(size: int256, price: int256, spot: int256) -> int256:
    """
    @notice What the buying side of a fill of |size| units at price X pays the selling side:
            |size| * (X - S), its magnitude rounded up (the payer pays the rounding, the
            receiver gets the same amount). Negative: the seller pays the buyer.
    @dev The caller checked X within the band (|X - S| < 2**120) and |size| <= 2**96.
    @param size The size traded (either sign; its magnitude is used).
    @param price The fill price X, a wad.
    @param spot The index price S, a wad.
    @return The payment, a wad.
    """
    # |size| * |X - S| < 2**216.
    amount: int256 = wad.ceil_div(unsafe_mul(abs(size), abs(unsafe_sub(price, spot))), WAD)
    if price < spot:
        return -amount
    return amount


@internal
@pure
def trade(position: Position, delta: int256, spot: int256, index: int256) -> (Position, int256):
    """
    @notice Settle a position, then change its size by `delta` (the fill's side).
    @dev Reverts "engine: perp size too large" when |q + delta| > 2**96.
    @param position The position.
    @param delta Size bought (> 0) or sold (< 0), a wad.
    @param spot The index price S, a wad.
    @param index The funding index F accrued to now.
    @return (the new position, the settlement cash as in `settle`).
    """
    p: Position = empty(Position)
    cash: int256 = 0
    p, cash = self.settle(position, spot, index)
    p.size = position.size + delta
    assert p.size >= -MAX_SIZE and p.size <= MAX_SIZE, "engine: perp size too large"
    return p, cash


@internal
@pure
def pack_market(market: Market) -> uint256[2]:
    """
    @notice The market's two storage words (layout in the module notice).
    @dev The fields are within their lanes: |pbar| <= 2e17 < 2**63, times < 2**40, params
         < 2**50 (pack_params).
    @param market The market.
    @return [word 0, word 1].
    """
    return [
        convert(market.premium + PREMIUM_OFFSET, uint256) | market.mark_time << 64
        | market.funding_time << 104 | market.params << 144,
        convert(convert(market.index, bytes32), uint256),
    ]


@internal
@pure
def unpack_market(words: uint256[2]) -> Market:
    """
    @notice The market from its two storage words.
    @param words [word 0, word 1] as `pack_market` wrote them.
    @return The market.
    """
    return Market(
        premium=convert(words[0] & MASK_64, int256) - PREMIUM_OFFSET,
        mark_time=(words[0] >> 64) & MASK_40,
        funding_time=(words[0] >> 104) & MASK_40,
        index=convert(convert(words[1], bytes32), int256),
        params=words[0] >> 144,
    )


@internal
@pure
def pack_position(position: Position) -> uint256[2]:
    """
    @notice A position's two storage words (layout in the module notice).
    @dev |q| <= 2**96 < 2**127 and 0 <= P <= 1e36 < 2**128 (settled prices are checked indices).
    @param position The position.
    @return [word 0, word 1].
    """
    return [
        convert(position.size + SIZE_OFFSET, uint256) | convert(position.price, uint256) << 128,
        convert(convert(position.index, bytes32), uint256),
    ]


@internal
@pure
def unpack_position(words: uint256[2]) -> Position:
    """
    @notice A position from its two storage words; two zero words are a flat position at
            P = 0, F0 = 0 (an account that never traded the perp).
    @param words [word 0, word 1] as `pack_position` wrote them.
    @return The position.
    """
    if words[0] == 0:
        return empty(Position)
    return Position(
        size=convert(words[0] & MASK_128, int256) - SIZE_OFFSET,
        price=convert(words[0] >> 128, int256),
        index=convert(convert(words[1], bytes32), int256),
    )
