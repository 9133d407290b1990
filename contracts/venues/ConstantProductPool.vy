# pragma version ~=0.4.3
# pragma optimize gas
"""
@title ConstantProductPool: an x*y=k pool with a fee, LP shares and TWAP accumulators
@license MIT
@notice Two ERC20 tokens (token0, token1; 0 to 18 decimals each), a swap fee in basis points
        fixed at deploy (at most MAX_FEE_BPS), LP shares as an 18-decimal ERC20.

        Swaps are exact-in and pull the input with `transferFrom` from the caller:
        `swap(token_in, amount_in, min_out, recipient)`. DESIGN.md writes the swap as
        `swap(amount_in, min_out, recipient)`; the `token_in` argument (token0 or token1) picks
        the direction, so one function serves both. The output is
            out = floor(a * (10000 - fee_bps) * r_out / (r_in * 10000 + a * (10000 - fee_bps)))
        (rounded down: in the pool's favour), and every swap asserts that k = r0 * r1 does not
        decrease. The fee stays in the reserves, so it accrues to LPs.

        Reserves are internal accounting, not `balanceOf`: tokens sent to the pool directly are
        donations that neither move the price nor count for anyone. Fee-on-transfer and rebasing
        tokens are not supported (the pool would credit more than it receives). Reserves are
        capped at MAX_RESERVE = 2**112 - 1 token units each, so both reserves and the time of the
        last update (block.timestamp modulo 2**32) share one storage slot, as in Uniswap V2.

        Liquidity: `add_liquidity` takes at most the given amounts, in the pool's current ratio
        (the amounts actually pulled are rounded up, the shares minted rounded down), and the
        first deposit locks MINIMUM_LIQUIDITY shares at the zero address forever, so the share
        supply never returns to zero and the share price cannot be inflated from an empty pool.
        `remove_liquidity` pays out pro rata, rounded down.

        TWAP accumulators (Uniswap V2 style). On the first state change of each block, before
        the reserves change, the pool adds, for the seconds elapsed since the last update,
            price0_cumulative_last += price0 * dt,   price0 = wad price of one whole token0 in
                                                       whole token1 = r1 * 10**(18+d0-d1) / r0,
            price1_cumulative_last += price1 * dt,   price1 = r0 * 10**(18+d1-d0) / r1,
        both prices floored to a wad. Units: wad (1e18 = 1.0) times seconds. A consumer reads the
        accumulator at two times t1 < t2 and gets the time-weighted average wad price as
        (c2 - c1) / (t2 - t1); `current_cumulative_prices()` extrapolates to `block.timestamp`
        with the current reserves. Because the update uses the reserves as they were before this
        block's first trade, a price set inside a block counts only from the block's end: a
        price held for one block of dt seconds moves a window-W average by dt/W of its deviation.
        The accumulators wrap modulo 2**256 (intended, as in Uniswap V2): take differences with
        wrapping subtraction. A price is below 2**112 * 10**36 < 2**232, so any window shorter
        than 2**24 seconds (194 days) has a true difference below 2**256 and is recovered exactly.

        Reentrancy: every state-changing pool function and every view derived from the reserves
        holds the contract's lock (no read-only reentrancy through a token callback). All state is written before the token calls (checks-effects-
        interactions).
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from contracts.interfaces import IConstantProductPool

implements: IERC20
implements: IERC20Detailed
implements: IConstantProductPool

FEE_DENOMINATOR: constant(uint256) = 10_000
MAX_FEE_BPS: public(constant(uint256)) = 1_000
MINIMUM_LIQUIDITY: public(constant(uint256)) = 1_000
MAX_RESERVE: public(constant(uint256)) = 2**112 - 1
MAX_DECIMALS: constant(uint8) = 18

token0: public(immutable(address))
token1: public(immutable(address))
fee_bps: public(immutable(uint256))
# 10**(18 + d0 - d1) and 10**(18 + d1 - d0): both in [1, 10**36].
PRICE0_SCALE: immutable(uint256)
PRICE1_SCALE: immutable(uint256)

MASK112: constant(uint256) = 2**112 - 1
MASK32: constant(uint256) = 2**32 - 1

# reserve0 | reserve1 << 112 | (block.timestamp % 2**32) << 224: one slot, one SSTORE per swap.
slot0: uint256
price0_cumulative_last: public(uint256)
price1_cumulative_last: public(uint256)

# LP shares (ERC20).
name: public(String[64])
symbol: public(String[32])
decimals: public(constant(uint8)) = 18
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(token0_: address, token1_: address, fee_bps_: uint256, name_: String[64],
             symbol_: String[32]):
    """
    @notice Deploy a pool for two distinct ERC20 tokens.
    @dev Reverts "pool: zero token", "pool: identical tokens", "pool: fee too high"
         (fee_bps_ > MAX_FEE_BPS) and "pool: decimals too large" (a token above 18 decimals).
    @param token0_ The first token (prices are quoted between token0 and token1).
    @param token1_ The second token.
    @param fee_bps_ Swap fee in basis points of the input, 0..1000 (0..10%).
    @param name_ LP share name.
    @param symbol_ LP share symbol.
    """
    assert token0_ != empty(address) and token1_ != empty(address), "pool: zero token"
    assert token0_ != token1_, "pool: identical tokens"
    assert fee_bps_ <= MAX_FEE_BPS, "pool: fee too high"
    d0: uint8 = staticcall IERC20Detailed(token0_).decimals()
    d1: uint8 = staticcall IERC20Detailed(token1_).decimals()
    assert d0 <= MAX_DECIMALS and d1 <= MAX_DECIMALS, "pool: decimals too large"
    token0 = token0_
    token1 = token1_
    fee_bps = fee_bps_
    # Exponents in [0, 36].
    PRICE0_SCALE = 10 ** (18 + convert(d0, uint256) - convert(d1, uint256))
    PRICE1_SCALE = 10 ** (18 + convert(d1, uint256) - convert(d0, uint256))
    self.name = name_
    self.symbol = symbol_


# ---------------------------------------------------------------------------------------------
# Internal math and accounting
# ---------------------------------------------------------------------------------------------


@internal
@view
def _amount_out(amount_in: uint256, reserve_in: uint256, reserve_out: uint256) -> uint256:
    """
    @dev Exact-in output with the fee, rounded down (in the pool's favour).
    """
    # reserve_in + amount_in <= MAX_RESERVE < 2**112 (checked by the callers), so
    # amount_in * 10**4 < 2**126 and its product with reserve_out < 2**238: no overflow;
    # fee_bps <= MAX_FEE_BPS < FEE_DENOMINATOR, so the subtraction does not wrap.
    amount_in_with_fee: uint256 = unsafe_mul(amount_in, unsafe_sub(FEE_DENOMINATOR, fee_bps))
    numerator: uint256 = unsafe_mul(amount_in_with_fee, reserve_out)
    denominator: uint256 = unsafe_add(unsafe_mul(reserve_in, FEE_DENOMINATOR), amount_in_with_fee)
    # denominator > 0: reserve_in > 0 is checked by the callers.
    return unsafe_div(numerator, denominator)


@internal
@pure
def _unpack(packed: uint256) -> (uint256, uint256, uint256):
    """
    @dev slot0 -> (reserve0, reserve1, timestamp modulo 2**32).
    """
    return packed & MASK112, (packed >> 112) & MASK112, packed >> 224


@internal
@view
def _elapsed(last32: uint256) -> uint256:
    """
    @dev Seconds from the last update (a 32-bit timestamp) to block.timestamp.
    """
    # Seconds since the last update, modulo 2**32 (correct across the 2106 wrap of the 32-bit
    # timestamp, as long as the pool sees a change at least every 136 years). The wrapped
    # difference is masked back into [0, 2**32).
    return unsafe_sub(block.timestamp & MASK32, last32) & MASK32


@internal
def _accumulate(r0: uint256, r1: uint256, last32: uint256):
    """
    @dev Advance the price accumulators to block.timestamp with the reserves held until now.
         Runs before any reserve change; a no-op after the first change in the same block
         (dt == 0). The caller then stores the new reserves with the current timestamp.
    """
    dt: uint256 = self._elapsed(last32)
    if dt != 0 and r0 != 0 and r1 != 0:
        # r < 2**112 and scale <= 10**36 < 2**120: the products fit in 2**232. The wrapping
        # multiplication by dt and the wrapping addition are the intended modulo-2**256
        # accumulator arithmetic (see the module notice).
        p0: uint256 = unsafe_div(unsafe_mul(r1, PRICE0_SCALE), r0)
        p1: uint256 = unsafe_div(unsafe_mul(r0, PRICE1_SCALE), r1)
        self.price0_cumulative_last = unsafe_add(self.price0_cumulative_last, unsafe_mul(p0, dt))
        self.price1_cumulative_last = unsafe_add(self.price1_cumulative_last, unsafe_mul(p1, dt))


@internal
def _set_reserves(r0: uint256, r1: uint256):
    """
    @dev Store both reserves with the current timestamp in slot0 and emit Sync.
    """
    # r0, r1 <= MAX_RESERVE (checked by the callers): the fields do not overlap.
    self.slot0 = r0 | (r1 << 112) | ((block.timestamp & MASK32) << 224)
    log IConstantProductPool.Sync(reserve0=r0, reserve1=r1)


@internal
def _pull(token: address, sender: address, amount: uint256):
    """
    @dev transferFrom(sender -> pool); tokens that return nothing count as success.
    """
    assert extcall IERC20(token).transferFrom(sender, self, amount, default_return_value=True), \
        "pool: transfer in failed"


@internal
def _push(token: address, recipient: address, amount: uint256):
    """
    @dev transfer(pool -> recipient); tokens that return nothing count as success.
    """
    assert extcall IERC20(token).transfer(recipient, amount, default_return_value=True), \
        "pool: transfer out failed"


# ---------------------------------------------------------------------------------------------
# Swaps
# ---------------------------------------------------------------------------------------------


@external
@nonreentrant
def swap(token_in: address, amount_in: uint256, min_out: uint256, recipient: address) -> uint256:
    """
    @notice Sell exactly `amount_in` of `token_in` (token0 or token1) for the other token.
    @dev Pulls `amount_in` from the caller with transferFrom (approve the pool first) and sends
         the output to `recipient`. Output rounded down; k = r0 * r1 never decreases.
         Reverts: "pool: zero input", "pool: zero recipient", "pool: invalid token",
         "pool: no liquidity", "pool: reserve overflow" (the input reserve would pass
         MAX_RESERVE), "pool: zero output", "pool: insufficient output" (below `min_out`),
         "pool: transfer in failed", "pool: transfer out failed". The k check
         ("pool: k decreased") holds by construction and guards against future edits.
    @param token_in The token sold.
    @param amount_in Exact input, in token_in units.
    @param min_out Least acceptable output, in the other token's units.
    @param recipient Receiver of the output.
    @return The output amount sent to `recipient`.
    """
    assert amount_in != 0, "pool: zero input"
    assert recipient != empty(address), "pool: zero recipient"
    zero_for_one: bool = token_in == token0
    assert zero_for_one or token_in == token1, "pool: invalid token"
    r0: uint256 = 0
    r1: uint256 = 0
    last32: uint256 = 0
    r0, r1, last32 = self._unpack(self.slot0)
    assert r0 != 0, "pool: no liquidity"
    reserve_in: uint256 = r0
    reserve_out: uint256 = r1
    token_out: address = token1
    if not zero_for_one:
        reserve_in = r1
        reserve_out = r0
        token_out = token0
    assert amount_in <= MAX_RESERVE - reserve_in, "pool: reserve overflow"
    amount_out: uint256 = self._amount_out(amount_in, reserve_in, reserve_out)
    assert amount_out != 0, "pool: zero output"
    assert amount_out >= min_out, "pool: insufficient output"
    # amount_out < reserve_out (the formula's quotient is below reserve_out); both products
    # are below 2**224.
    new_in: uint256 = unsafe_add(reserve_in, amount_in)
    new_out: uint256 = unsafe_sub(reserve_out, amount_out)
    assert unsafe_mul(new_in, new_out) >= unsafe_mul(reserve_in, reserve_out), "pool: k decreased"

    self._accumulate(r0, r1, last32)
    if zero_for_one:
        self._set_reserves(new_in, new_out)
    else:
        self._set_reserves(new_out, new_in)
    log IConstantProductPool.Swap(sender=msg.sender, recipient=recipient, token_in=token_in,
                                  amount_in=amount_in, amount_out=amount_out)

    self._pull(token_in, msg.sender, amount_in)
    self._push(token_out, recipient, amount_out)
    return amount_out


@external
@view
@nonreentrant
def get_amount_out(token_in: address, amount_in: uint256) -> uint256:
    """
    @notice The output `swap(token_in, amount_in, ...)` would pay now (exact, same rounding).
    @dev Returns 0 for a zero input or an empty pool. Reverts "pool: invalid token" and
         "pool: reserve overflow" like `swap`.
    @param token_in The token sold (token0 or token1).
    @param amount_in Exact input.
    @return The output amount.
    """
    zero_for_one: bool = token_in == token0
    assert zero_for_one or token_in == token1, "pool: invalid token"
    packed: uint256 = self.slot0
    reserve_in: uint256 = packed & MASK112
    reserve_out: uint256 = (packed >> 112) & MASK112
    if not zero_for_one:
        reserve_in = reserve_out
        reserve_out = packed & MASK112
    if amount_in == 0 or reserve_in == 0:
        return 0
    assert amount_in <= MAX_RESERVE - reserve_in, "pool: reserve overflow"
    return self._amount_out(amount_in, reserve_in, reserve_out)


# ---------------------------------------------------------------------------------------------
# Liquidity
# ---------------------------------------------------------------------------------------------


@external
@nonreentrant
def add_liquidity(amount0: uint256, amount1: uint256, min_shares: uint256,
                  recipient: address) -> uint256:
    """
    @notice Deposit up to `amount0` of token0 and `amount1` of token1 for LP shares.
    @dev First deposit: takes both amounts, mints isqrt(amount0 * amount1) shares and locks
         MINIMUM_LIQUIDITY of them at the zero address. Later deposits: shares =
         min(amount0 * S / r0, amount1 * S / r1) rounded down, and the pool pulls only
         ceil(shares * r / S) of each token (at most the amount offered).
         Reverts: "pool: zero recipient", "pool: zero amount", "pool: reserve overflow",
         "pool: insufficient initial liquidity" (first deposit at most MINIMUM_LIQUIDITY
         shares), "pool: zero shares", "pool: insufficient shares" (below `min_shares`),
         "pool: transfer in failed".
    @param amount0 Most token0 to deposit.
    @param amount1 Most token1 to deposit.
    @param min_shares Least acceptable shares minted to `recipient`.
    @param recipient Receiver of the shares.
    @return The shares minted to `recipient`.
    """
    assert recipient != empty(address), "pool: zero recipient"
    assert amount0 != 0 and amount1 != 0, "pool: zero amount"
    r0: uint256 = 0
    r1: uint256 = 0
    last32: uint256 = 0
    r0, r1, last32 = self._unpack(self.slot0)
    assert amount0 <= MAX_RESERVE - r0 and amount1 <= MAX_RESERVE - r1, "pool: reserve overflow"
    supply: uint256 = self.totalSupply
    shares: uint256 = 0
    used0: uint256 = amount0
    used1: uint256 = amount1
    if supply == 0:
        # amount0 * amount1 < 2**224.
        root: uint256 = isqrt(amount0 * amount1)
        assert root > MINIMUM_LIQUIDITY, "pool: insufficient initial liquidity"
        shares = root - MINIMUM_LIQUIDITY
        self.totalSupply = MINIMUM_LIQUIDITY
        self.balanceOf[empty(address)] = MINIMUM_LIQUIDITY
        log IERC20.Transfer(sender=empty(address), receiver=empty(address),
                            value=MINIMUM_LIQUIDITY)
        supply = MINIMUM_LIQUIDITY
    else:
        # supply <= isqrt(r0 * r1) < 2**112 (shares only grow with the reserves, and swaps
        # only raise k), so amount * supply < 2**224.
        shares = min(amount0 * supply // r0, amount1 * supply // r1)
        assert shares != 0, "pool: zero shares"
        # ceil(shares * r / S) <= amount: shares <= amount * S / r.
        used0 = (shares * r0 + supply - 1) // supply
        used1 = (shares * r1 + supply - 1) // supply
    assert shares >= min_shares, "pool: insufficient shares"

    self._accumulate(r0, r1, last32)
    self._set_reserves(r0 + used0, r1 + used1)
    self.totalSupply = supply + shares
    self.balanceOf[recipient] += shares
    log IERC20.Transfer(sender=empty(address), receiver=recipient, value=shares)
    log IConstantProductPool.Mint(sender=msg.sender, recipient=recipient, amount0=used0,
                                  amount1=used1, shares=shares)

    self._pull(token0, msg.sender, used0)
    self._pull(token1, msg.sender, used1)
    return shares


@external
@nonreentrant
def remove_liquidity(shares: uint256, min0: uint256, min1: uint256,
                     recipient: address) -> (uint256, uint256):
    """
    @notice Burn `shares` of the caller's LP shares for a pro-rata part of both reserves.
    @dev amount_i = floor(shares * r_i / S). The locked MINIMUM_LIQUIDITY keeps both reserves
         above zero. Reverts: "pool: zero recipient", "pool: zero shares",
         "pool: insufficient balance", "pool: zero output" (either amount rounds to zero),
         "pool: insufficient amount0", "pool: insufficient amount1", "pool: transfer out failed".
    @param shares LP shares to burn.
    @param min0 Least acceptable token0 out.
    @param min1 Least acceptable token1 out.
    @param recipient Receiver of both tokens.
    @return (amount0, amount1) paid to `recipient`.
    """
    assert recipient != empty(address), "pool: zero recipient"
    assert shares != 0, "pool: zero shares"
    assert self.balanceOf[msg.sender] >= shares, "pool: insufficient balance"
    r0: uint256 = 0
    r1: uint256 = 0
    last32: uint256 = 0
    r0, r1, last32 = self._unpack(self.slot0)
    supply: uint256 = self.totalSupply
    # shares <= supply - MINIMUM_LIQUIDITY < 2**112 and r < 2**112: products < 2**224.
    amount0: uint256 = shares * r0 // supply
    amount1: uint256 = shares * r1 // supply
    assert amount0 != 0 and amount1 != 0, "pool: zero output"
    assert amount0 >= min0, "pool: insufficient amount0"
    assert amount1 >= min1, "pool: insufficient amount1"

    self._accumulate(r0, r1, last32)
    self._set_reserves(r0 - amount0, r1 - amount1)
    self.balanceOf[msg.sender] -= shares
    self.totalSupply = supply - shares
    log IERC20.Transfer(sender=msg.sender, receiver=empty(address), value=shares)
    log IConstantProductPool.Burn(sender=msg.sender, recipient=recipient, amount0=amount0,
                                  amount1=amount1, shares=shares)

    self._push(token0, recipient, amount0)
    self._push(token1, recipient, amount1)
    return amount0, amount1


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------


@external
@view
@nonreentrant
def get_reserves() -> (uint256, uint256, uint256):
    """
    @notice Current reserves and the time of the last reserve change.
    @return (reserve0, reserve1, block_timestamp_last), reserves in token units, the timestamp
            modulo 2**32.
    """
    return self._unpack(self.slot0)


@external
@view
@nonreentrant
def block_timestamp_last() -> uint256:
    """
    @notice block.timestamp (modulo 2**32) of the last reserve change, which is also the time
            the price accumulators were last advanced to.
    @return The timestamp modulo 2**32.
    """
    return self.slot0 >> 224


@external
@view
@nonreentrant
def current_cumulative_prices() -> (uint256, uint256, uint256):
    """
    @notice Both price accumulators extrapolated to block.timestamp with the current reserves.
    @dev Equals what the accumulators would hold if a state change ran now. Units: wad price
         times seconds, wrapping modulo 2**256 (see the module notice).
    @return (price0_cumulative, price1_cumulative, block.timestamp).
    """
    c0: uint256 = self.price0_cumulative_last
    c1: uint256 = self.price1_cumulative_last
    r0: uint256 = 0
    r1: uint256 = 0
    last32: uint256 = 0
    r0, r1, last32 = self._unpack(self.slot0)
    dt: uint256 = self._elapsed(last32)
    if dt != 0 and r0 != 0 and r1 != 0:
        # Same bounds and intended wrapping as _accumulate.
        c0 = unsafe_add(c0, unsafe_mul(unsafe_div(unsafe_mul(r1, PRICE0_SCALE), r0), dt))
        c1 = unsafe_add(c1, unsafe_mul(unsafe_div(unsafe_mul(r0, PRICE1_SCALE), r1), dt))
    return c0, c1, block.timestamp


@external
@view
@nonreentrant
def cumulative_price_now(of_token0: bool) -> uint256:
    """
    @notice One accumulator of `current_cumulative_prices`, for feeds that need only one (one
            storage read fewer).
    @param of_token0 True: price0's accumulator (token0 priced in token1); False: price1's.
    @return The accumulator extrapolated to block.timestamp (wad * seconds, wrapping).
    """
    r0: uint256 = 0
    r1: uint256 = 0
    last32: uint256 = 0
    r0, r1, last32 = self._unpack(self.slot0)
    dt: uint256 = self._elapsed(last32)
    if of_token0:
        c0: uint256 = self.price0_cumulative_last
        if dt != 0 and r0 != 0 and r1 != 0:
            # Same bounds and intended wrapping as _accumulate.
            c0 = unsafe_add(c0, unsafe_mul(unsafe_div(unsafe_mul(r1, PRICE0_SCALE), r0), dt))
        return c0
    c1: uint256 = self.price1_cumulative_last
    if dt != 0 and r0 != 0 and r1 != 0:
        # Same bounds and intended wrapping as _accumulate.
        c1 = unsafe_add(c1, unsafe_mul(unsafe_div(unsafe_mul(r0, PRICE1_SCALE), r1), dt))
    return c1


@external
@view
@nonreentrant
def spot_price0() -> uint256:
    """
    @notice The current price of one whole token0 in whole token1, as a wad (floored).
    @dev The same value the accumulator integrates; 0 for an empty pool.
    @return r1 * 10**(18 + d0 - d1) / r0.
    """
    packed: uint256 = self.slot0
    r0: uint256 = packed & MASK112
    if r0 == 0:
        return 0
    # Same bounds as _accumulate.
    return unsafe_div(unsafe_mul((packed >> 112) & MASK112, PRICE0_SCALE), r0)


@external
@view
@nonreentrant
def spot_price1() -> uint256:
    """
    @notice The current price of one whole token1 in whole token0, as a wad (floored).
    @dev The same value the accumulator integrates; 0 for an empty pool.
    @return r0 * 10**(18 + d1 - d0) / r1.
    """
    packed: uint256 = self.slot0
    r1: uint256 = (packed >> 112) & MASK112
    if r1 == 0:
        return 0
    # Same bounds as _accumulate.
    return unsafe_div(unsafe_mul(packed & MASK112, PRICE1_SCALE), r1)


# ---------------------------------------------------------------------------------------------
# LP shares: ERC20
# ---------------------------------------------------------------------------------------------


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    """
    @dev Move LP shares; reverts "pool: transfer to zero address", "pool: insufficient balance".
    """
    assert receiver != empty(address), "pool: transfer to zero address"
    assert self.balanceOf[sender] >= amount, "pool: insufficient balance"
    self.balanceOf[sender] = unsafe_sub(self.balanceOf[sender], amount)
    # Total supply < 2**112 bounds every balance.
    self.balanceOf[receiver] = unsafe_add(self.balanceOf[receiver], amount)
    log IERC20.Transfer(sender=sender, receiver=receiver, value=amount)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    """
    @notice Transfer LP shares from the caller.
    @dev Reverts "pool: transfer to zero address", "pool: insufficient balance".
    @param receiver Recipient.
    @param amount Shares.
    @return True.
    """
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    """
    @notice Transfer LP shares from `sender` using the caller's allowance.
    @dev An allowance of max_value(uint256) is infinite and not decremented. Reverts
         "pool: insufficient allowance" and the reasons of `transfer`.
    @param sender Owner of the shares.
    @param receiver Recipient.
    @param amount Shares.
    @return True.
    """
    allowed: uint256 = self.allowance[sender][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "pool: insufficient allowance"
        self.allowance[sender][msg.sender] = unsafe_sub(allowed, amount)
    self._transfer(sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Allow `spender` to transfer up to `amount` of the caller's LP shares.
    @param spender Spender.
    @param amount Allowance (max_value(uint256) is infinite).
    @return True.
    """
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True
