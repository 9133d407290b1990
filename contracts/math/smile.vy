# pragma version ~=0.4.3
# pragma optimize gas
"""
@title smile: one expiry's volatility smile, as the VolOracle stores it and the margin model reads it
@license MIT
@notice Pure module: the packed forms of a VolOracle entry and of its limits, and the one
        formula that turns them into a volatility.

        Entry (one word): atm (bits 0..95) | (skew + 2**95) << 96 (bits 96..191) | updated_at
        << 192 (bits 192..255). atm <= 1e19 < 2**96 and |skew| <= 1e19 < 2**95 by the
        VolOracle's hard bounds; updated_at >= 1 makes a stored entry non-zero.
        Limits (one word): vol_min (bits 0..63) | vol_max << 64 | heartbeat << 128 |
        stale_markup << 192, each below 2**64 by the VolOracle's hard bounds.

        sigma(entry, limits, ln(F/K), now) = clamp(atm - skew * ln(F/K), vol_min, vol_max),
        the skew term truncated toward zero (so it equals skew * ln(K/F) truncated); an entry
        older than `heartbeat` at `now` answers min(ceil(sigma * (1 + stale_markup)), vol_max).

        Who uses it: the VolOracle answers `sigma(expiry, K, F)` with ln(F/K) =
        black76.log_moneyness(F, K) (0 at K == F, where log_moneyness is exactly 0 too). The
        margin engine hands the packed words of an account's expiries to the RiskCalculator,
        which evaluates the same formula with the same log-moneyness it prices with, so the
        vol of every position is the VolOracle's answer at the current spot, to the wei.
"""

from contracts.math import wad

WAD: constant(int256) = wad.WAD
MASK_64: constant(uint256) = 2**64 - 1
MASK_96: constant(uint256) = 2**96 - 1
SKEW_OFFSET: constant(int256) = 2**95
# The skew lane of a zero skew.
SKEW_ZERO: constant(uint256) = 2**95


struct Limits:
    vol_min: uint256
    vol_max: uint256
    heartbeat: uint256
    stale_markup: uint256


@internal
@pure
def pack_entry(atm: uint256, skew: int256, updated_at: uint256) -> uint256:
    """
    @notice One entry's word (layout in the module notice).
    @dev The caller bounds the fields: atm < 2**96, |skew| < 2**95, updated_at < 2**64.
    @param atm ATM volatility, a wad.
    @param skew d(sigma) / d(ln(K/F)), a signed wad.
    @param updated_at When it was pushed, unix seconds.
    @return The packed entry.
    """
    # skew + 2**95 lies in (0, 2**96) for |skew| < 2**95: the conversion is exact.
    return atm | (convert(unsafe_add(skew, SKEW_OFFSET), uint256) << 96) | (updated_at << 192)


@internal
@pure
def unpack_entry(entry: uint256) -> (uint256, int256, uint256):
    """
    @notice The fields of a packed entry.
    @param entry The packed entry.
    @return (atm, skew, updated_at).
    """
    # The lane is below 2**96: its reinterpretation as int256 is its value, and the
    # subtraction cannot overflow.
    skew: int256 = unsafe_sub(convert(convert((entry >> 96) & MASK_96, bytes32), int256), SKEW_OFFSET)
    return entry & MASK_96, skew, entry >> 192


@internal
@pure
def is_flat(entry: uint256) -> bool:
    """
    @notice Whether the entry's skew is zero (its sigma does not depend on the strike).
    @param entry The packed entry.
    @return True for a zero skew.
    """
    return (entry >> 96) & MASK_96 == SKEW_ZERO


@internal
@pure
def pack_limits(limits: Limits) -> uint256:
    """
    @notice The limits' word (layout in the module notice).
    @dev The caller bounds each field below 2**64.
    @param limits vol_min, vol_max, heartbeat, stale_markup.
    @return The packed limits.
    """
    return limits.vol_min | (limits.vol_max << 64) | (limits.heartbeat << 128) | (limits.stale_markup << 192)


@internal
@pure
def unpack_limits(word: uint256) -> Limits:
    """
    @notice The fields of a packed limits word.
    @param word The packed limits.
    @return The limits.
    """
    return Limits(
        vol_min=word & MASK_64, vol_max=(word >> 64) & MASK_64, heartbeat=(word >> 128) & MASK_64,
        stale_markup=word >> 192,
    )


@internal
@pure
def is_stale(entry: uint256, limits: uint256, now: uint256) -> bool:
    """
    @notice Whether an entry is older than the heartbeat at `now` (or dated in the future).
    @param entry The packed entry.
    @param limits The packed limits.
    @param now Unix seconds.
    @return True when stale.
    """
    updated_at: uint256 = entry >> 192
    return updated_at > now or unsafe_sub(now, updated_at) > (limits >> 128) & MASK_64


@internal
@pure
def sigma(entry: uint256, limits: uint256, ln_fk: int256, now: uint256) -> int256:
    """
    @notice The volatility of a packed entry at log-moneyness ln(F/K) (formula in the notice).
    @dev Any words are safe: atm < 2**96, |skew| < 2**95 and |ln_fk| < 2**127 keep the skew
         product below 2**222; vol_max and stale_markup < 2**64 keep the markup product below
         2**129. An entry "from the future" (updated_at > now) counts as stale: the
         conservative answer. The result lies in [vol_min, vol_max] when vol_min <= vol_max,
         so it is in [0, 2**64).
    @param entry The packed entry.
    @param limits The packed limits.
    @param ln_fk ln(F/K), a wad (black76.log_moneyness(F, K)).
    @param now The time the answer is for, unix seconds.
    @return sigma, a wad.
    """
    atm: uint256 = 0
    skew: int256 = 0
    updated_at: uint256 = 0
    atm, skew, updated_at = self.unpack_entry(entry)
    # Every lane is below 2**96: its reinterpretation as int256 is its value.
    vol: int256 = convert(convert(atm, bytes32), int256)
    if skew != 0 and ln_fk != 0:
        # Truncated toward zero: -(skew * ln(F/K)) / 1e18 == skew * ln(K/F) / 1e18.
        vol = unsafe_sub(vol, unsafe_div(unsafe_mul(skew, ln_fk), WAD))
    hi: int256 = convert(convert((limits >> 64) & MASK_64, bytes32), int256)
    vol = min(max(vol, convert(convert(limits & MASK_64, bytes32), int256)), hi)
    if self.is_stale(entry, limits, now):
        # 0 <= vol < 2**64 and 1e18 + markup < 2**65: no overflow. Rounded up.
        markup: int256 = unsafe_add(WAD, convert(convert(limits >> 192, bytes32), int256))
        vol = min(unsafe_div(unsafe_add(unsafe_mul(vol, markup), WAD - 1), WAD), hi)
    return vol
