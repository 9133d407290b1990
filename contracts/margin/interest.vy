# pragma version ~=0.4.3
# pragma optimize gas
"""
@title interest: the cash pool's interest model (indices, the kinked rate, shares), pure
@license MIT
@notice DESIGN.md "Cash and interest"; the rules and decisions are in docs/margin.md ("Cash
        and interest"), and keeper/interest.py is the Python twin (same integers).

        A positive cash balance is supply shares, a negative one borrow shares. Two indices,
        supply I_s and borrow I_b (wads, from 1e18), turn shares into USD: a supply balance is
        floor(shares * I_s / 1e18), a debt ceil(shares * I_b / 1e18). Each accrual over dt
        seconds, at the utilization U = borrows / supply (both at the indices before it, U
        capped at 1), charges the kinked rate
            r(U) = base + slope1 * min(U, kink) + slope2 * max(U - kink, 0)   (per year)
        as I_b += ceil(I_b * r * dt / YEAR) and gives suppliers (1 - reserve_factor) of the
        interest this charges, B * dI_b (wad^2 units, B the borrow shares):
            I_s += floor(B * dI_b * (1 - reserve_factor) / S)
        The rest, and every rounding, is the reserve (the engine pays it to the insurance fund).

        Two storage words hold it all, so that an accrual reads two slots and writes one:
            indices word: borrow index (112 bits) << 144 | supply index (112) << 32 | time (32)
            totals word:  params (64) << 192 | borrow shares (96) << 96 | supply shares (96)
        params, in basis points: base (10 bits) | slope1 << 10 (14) | slope2 << 24 (15) |
        kink << 39 (14) | reserve_factor << 53 (11). The lanes hold the hard bounds
        (`pack_params`). 112-bit indices hold a growth of 5e15 from 1: at the highest rate the
        bounds allow (4.1 a year, U >= 1 throughout) that is more than 8 years; should the
        borrow index reach the bound, accrual stops (`accrue` leaves the indices unchanged)
        instead of reverting, so withdrawals and liquidations go on. 96-bit share totals hold
        7.9e10 USD at an index of 1 (7.9e8 at MIN_SUPPLY_INDEX, the lowest a socialized loss
        takes the supply index); an action that would pass them reverts.
"""

from contracts.math import wad

WAD: constant(uint256) = wad.UWAD
YEAR: constant(uint256) = wad.YEAR
BP: constant(uint256) = 10**14
BPS: constant(uint256) = 10_000

INDEX_MASK: constant(uint256) = 2**112 - 1
TIME_MASK: constant(uint256) = 2**32 - 1
SHARE_MASK: constant(uint256) = 2**96 - 1
BORROW_SHIFT: constant(uint256) = 144
SUPPLY_SHIFT: constant(uint256) = 32
PARAMS_SHIFT: constant(uint256) = 192

# Hard bounds (basis points): base <= 10%, slope1 <= 100%, slope2 <= 300% a year; kink in
# [10%, 99%]; reserve factor <= 20%; utilization cap in [50%, 100%].
MAX_BASE: constant(uint256) = 1_000
MAX_SLOPE1: constant(uint256) = 10_000
MAX_SLOPE2: constant(uint256) = 30_000
MIN_KINK: constant(uint256) = 1_000
MAX_KINK: constant(uint256) = 9_900
MAX_RESERVE: constant(uint256) = 2_000
MIN_CAP: constant(uint256) = 5_000

# A socialized loss lowers the supply index no further than this (0.01): what it cannot take
# from the other balances is the engine's deficit. So a deposit after a loss beyond the whole
# pool mints at most 100 shares per USD and the 96-bit share totals still hold 7.9e8 USD.
MIN_SUPPLY_INDEX: constant(uint256) = WAD // 100

# The indices word of a fresh pool: both indices 1, time 0.
INITIAL_INDICES: constant(uint256) = (WAD << BORROW_SHIFT) | (WAD << SUPPLY_SHIFT)


@internal
@pure
def borrow_index(indices: uint256) -> uint256:
    """
    @notice The borrow index of an indices word, a wad.
    @param indices The indices word.
    @return I_b.
    """
    return indices >> BORROW_SHIFT


@internal
@pure
def supply_index(indices: uint256) -> uint256:
    """
    @notice The supply index of an indices word, a wad.
    @param indices The indices word.
    @return I_s.
    """
    return (indices >> SUPPLY_SHIFT) & INDEX_MASK


@internal
@pure
def supply_shares(totals: uint256) -> uint256:
    """
    @notice Total supply shares of a totals word.
    @param totals The totals word.
    @return S.
    """
    return totals & SHARE_MASK


@internal
@pure
def borrow_shares(totals: uint256) -> uint256:
    """
    @notice Total borrow shares of a totals word.
    @param totals The totals word.
    @return B.
    """
    return (totals >> 96) & SHARE_MASK


@internal
@pure
def with_indices(indices: uint256, supply_index_: uint256) -> uint256:
    """
    @notice The indices word with its supply index replaced (a socialized loss lowers it).
    @dev The caller passes 1 <= supply_index_ <= the current supply index.
    @param indices The indices word.
    @param supply_index_ The new supply index.
    @return The new word.
    """
    return (indices & ~(INDEX_MASK << SUPPLY_SHIFT)) | (supply_index_ << SUPPLY_SHIFT)


@internal
@pure
def add_totals(totals: uint256, supply_delta: int256, borrow_delta: int256) -> uint256:
    """
    @notice The totals word after the share totals change by the given amounts.
    @dev Reverts "engine: cash totals too large" past 2**96 shares. A total below zero would
         wrap to above 2**96 and revert the same way; it cannot happen (the engine never burns
         more shares than an account holds, and the totals are the accounts' sums).
    @param totals The totals word.
    @param supply_delta Change of the supply shares.
    @param borrow_delta Change of the borrow shares.
    @return The new word.
    """
    # Two's complement addition mod 2**256 (see @dev).
    s: uint256 = unsafe_add(totals & SHARE_MASK, convert(convert(supply_delta, bytes32), uint256))
    b: uint256 = unsafe_add((totals >> 96) & SHARE_MASK, convert(convert(borrow_delta, bytes32), uint256))
    assert s <= SHARE_MASK and b <= SHARE_MASK, "engine: cash totals too large"
    return (totals >> PARAMS_SHIFT << PARAMS_SHIFT) | (b << 96) | s


@internal
@pure
def supply_value(shares: uint256, indices: uint256) -> uint256:
    """
    @notice USD (wad) of supply shares, rounded down.
    @param shares Supply shares.
    @param indices The indices word.
    @return floor(shares * I_s / 1e18).
    """
    return shares * ((indices >> SUPPLY_SHIFT) & INDEX_MASK) // WAD


@internal
@pure
def debt_value(shares: uint256, indices: uint256) -> uint256:
    """
    @notice USD (wad) owed on borrow shares, rounded up.
    @param shares Borrow shares.
    @param indices The indices word.
    @return ceil(shares * I_b / 1e18).
    """
    return (shares * (indices >> BORROW_SHIFT) + WAD - 1) // WAD


@internal
@pure
def utilization(supply: uint256, borrows: uint256) -> uint256:
    """
    @notice U = borrows / supply, a wad capped at 1 (1 when there are borrows but no supply).
    @param supply Total supply (USD wad).
    @param borrows Total borrows (USD wad).
    @return U, rounded down.
    """
    if borrows >= supply:
        if borrows == 0:
            return 0
        return WAD
    # borrows < supply < 2**208 / 1e18 here, so borrows * 1e18 < 2**208 and supply > 0.
    return unsafe_div(unsafe_mul(borrows, WAD), supply)


@internal
@pure
def totals_utilization(totals: uint256, indices: uint256) -> uint256:
    """
    @notice U of the pool a totals word and an indices word describe.
    @param totals The totals word.
    @param indices The indices word.
    @return U, a wad.
    """
    return self.utilization(
        self.supply_value(totals & SHARE_MASK, indices), self.debt_value((totals >> 96) & SHARE_MASK, indices)
    )


@internal
@pure
def rate(params: uint256, u: uint256) -> uint256:
    """
    @notice The borrow rate per year at utilization u: base + slope1 min(u, kink) + slope2
            max(u - kink, 0), a wad rounded down.
    @param params The packed parameters (the totals word's top 64 bits).
    @param u Utilization, a wad <= 1e18.
    @return r, a wad per year (at most 4.1e18 within the bounds).
    """
    # Unchecked: every lane is below 2**15, so each term is below 3.3e18 * 1e18 < 2**122.
    kink: uint256 = unsafe_mul((params >> 39) & 16383, BP)
    r: uint256 = unsafe_add(
        unsafe_mul(params & 1023, BP),
        unsafe_div(unsafe_mul(unsafe_mul((params >> 10) & 16383, BP), min(u, kink)), WAD),
    )
    if u > kink:
        r = unsafe_add(r, unsafe_div(unsafe_mul(unsafe_mul((params >> 24) & 32767, BP), unsafe_sub(u, kink)), WAD))
    return r


@internal
@pure
def accrue(indices: uint256, totals: uint256, now: uint256) -> uint256:
    """
    @notice The indices word accrued to `now` (see the module notice for the rule).
    @dev A no-op when `now` is the word's time. Bounds: I_b < 2**112, r <= 4.1e18, dt < 2**32
         keep I_b * r * dt < 2**202; B * dI_b < 2**208 and times 1e4 < 2**222. Past 2**112
         the borrow index stops (only the time moves); the supply index is clamped at the
         bound (suppliers' credit rounds down, the rest stays in the reserve).
    @param indices The indices word.
    @param totals The totals word.
    @param now The block timestamp (< 2**32).
    @return The new indices word.
    """
    last: uint256 = indices & TIME_MASK
    if now == last:
        return indices
    ib: uint256 = indices >> BORROW_SHIFT
    is_: uint256 = (indices >> SUPPLY_SHIFT) & INDEX_MASK
    s: uint256 = totals & SHARE_MASK
    b: uint256 = (totals >> 96) & SHARE_MASK
    params: uint256 = totals >> PARAMS_SHIFT
    # Unchecked where the lanes bound it (see @dev): S, B < 2**96 and I_s, I_b < 2**112, so
    # S I_s and B I_b < 2**208; with dI_b <= 2**112 (checked next) B dI_b 1e4 < 2**222.
    supply: uint256 = unsafe_div(unsafe_mul(s, is_), WAD)
    borrows: uint256 = unsafe_div(unsafe_add(unsafe_mul(b, ib), WAD - 1), WAD)
    r: uint256 = self.rate(params, self.utilization(supply, borrows))
    db: uint256 = unsafe_div(unsafe_add(unsafe_mul(unsafe_mul(ib, r), now - last), WAD * YEAR - 1), WAD * YEAR)
    if unsafe_add(ib, db) > INDEX_MASK:
        return (indices >> SUPPLY_SHIFT << SUPPLY_SHIFT) | now
    if s > 0 and b > 0:
        gain: uint256 = unsafe_div(unsafe_mul(unsafe_mul(b, db), BPS - ((params >> 53) & 2047)), unsafe_mul(BPS, s))
        is_ = min(unsafe_add(is_, gain), INDEX_MASK)
    return (unsafe_add(ib, db) << BORROW_SHIFT) | (is_ << SUPPLY_SHIFT) | now


@internal
@pure
def pack_params(
    base: uint256, slope1: uint256, slope2: uint256, kink: uint256, reserve_factor: uint256, cap: uint256
) -> uint256:
    """
    @notice Check the interest parameters against the hard bounds and pack the rate's five.
    @dev Every value is a wad and a whole number of basis points (1e14). Bounds: base <= 0.1,
         slope1 <= 1, slope2 <= 3 (a year); kink in [0.1, 0.99]; reserve_factor <= 0.2; cap
         (the utilization cap on new borrowing) in [0.5, 1]. Reverts "engine: bad interest
         params".
    @param base Rate at zero utilization, per year.
    @param slope1 Rate added per unit of utilization up to the kink.
    @param slope2 Rate added per unit of utilization above the kink.
    @param kink The kink U*.
    @param reserve_factor Share of the interest paid to the insurance fund.
    @param cap Utilization cap (checked here, stored by the engine).
    @return The params lane (64 bits).
    """
    assert (
        base % BP + slope1 % BP + slope2 % BP + kink % BP + reserve_factor % BP + cap % BP == 0
        and base <= MAX_BASE * BP and slope1 <= MAX_SLOPE1 * BP and slope2 <= MAX_SLOPE2 * BP
        and kink >= MIN_KINK * BP and kink <= MAX_KINK * BP and reserve_factor <= MAX_RESERVE * BP
        and cap >= MIN_CAP * BP and cap <= WAD
    ), "engine: bad interest params"
    return (
        base // BP | (slope1 // BP) << 10 | (slope2 // BP) << 24 | (kink // BP) << 39
        | (reserve_factor // BP) << 53
    )
