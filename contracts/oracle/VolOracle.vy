# pragma version ~=0.4.3
# pragma optimize gas
# pragma experimental-codegen
"""
@title VolOracle: per-expiry ATM volatility and skew, pushed by authorised feeders, bounded
@license MIT
@notice For each expiry (a unix timestamp) the keeper pushes an at-the-money volatility `atm`
        (wad, 1e18 = 100%) and a signed skew slope `skew` (wad of volatility per unit of
        ln(strike / forward)). The margin engine reads

            sigma(expiry, strike, forward) = clamp(atm + skew * ln(strike / forward), vol_min, vol_max)

        with ln(K/F) = -black76.log_moneyness(F, K) (contracts/math/smile.vy has the formula
        and the packed forms; the margin engine's RiskCalculator evaluates the same one).
        Rounding: skew * ln(K/F) / 1e18 is truncated toward zero; at strike == forward the log
        term is exactly 0, so sigma(e, F, F) == clamp(atm).

        Bounds on every update (reverts otherwise): vol_min <= atm <= vol_max, |skew| <=
        max_skew, and |atm - previous| <= max_change where `previous` is the expiry's previous
        ATM clamped to the current [vol_min, vol_max] (the first update of an expiry only
        needs the bounds; the clamp keeps a feeder from being locked out after the owner
        narrows the bounds). max_change bounds one update, not a rate: a feeder can post
        several updates in a row, so feeders are trusted and the bound guards against a fat
        finger or one bad transaction.

        Staleness: an entry older than `vol_heartbeat` seconds is never answered silently.
        It answers a conservative value, and conservative for margin means HIGHER volatility
        (short options, the positions that carry the risk, are worth more, so their margin
        grows): a stale entry answers min(fresh * (1 + stale_markup), vol_max), rounded up,
        where fresh is the value above. It is never below the fresh value; stale_markup = 1e18
        doubles the volatility and a large markup amounts to answering vol_max. A higher vol also raises the value of LONG options, so
        the engine should not let an account increase risk (withdraw) on the strength of a
        stale vol: `is_fresh(expiry)` tells it.

        Unknown expiry: `sigma` reverts "vol: no entry" rather than inventing a number; an
        entry, once fed, is never deleted, so the engine should list a series only when
        `has_entry(expiry)` and a listed series can always be valued (fresh or stale).

        Hard bounds (constants) on the owner's parameters: 0.001 <= vol_min <= vol_max <= 10
        (the sigma domain of contracts/math/black76.vy), 0 < max_change <= 10, max_skew <= 10,
        1 s <= vol_heartbeat <= 1 day, stale_markup <= 10. Strike and forward must lie in
        (0, 1e36] like black76's prices.

        Roles: one owner (two-step transfer) manages feeders and parameters, each change with
        an event; every update emits VolUpdated.
"""

from contracts.auth import ownable
from contracts.math import black76
from contracts.math import wad
from contracts.math import smile
from contracts.interfaces import IVolOracle

implements: IVolOracle

initializes: ownable

exports: (ownable.owner, ownable.pending_owner, ownable.transfer_ownership, ownable.accept_ownership)

# Largest batch of `packed_entries` (the engine's position limit).
MAX_BATCH: constant(uint256) = 32

struct VolEntry:
    atm: uint256
    skew: int256
    updated_at: uint256

event VolUpdated:
    expiry: indexed(uint256)
    atm: uint256
    skew: int256
    feeder: indexed(address)

event FeederAdded:
    feeder: indexed(address)

event FeederRemoved:
    feeder: indexed(address)

event VolBoundsSet:
    old_vol_min: uint256
    old_vol_max: uint256
    new_vol_min: uint256
    new_vol_max: uint256

event MaxChangeSet:
    old_max_change: uint256
    new_max_change: uint256

event MaxSkewSet:
    old_max_skew: uint256
    new_max_skew: uint256

event VolHeartbeatSet:
    old_heartbeat: uint256
    new_heartbeat: uint256

event StaleMarkupSet:
    old_markup: uint256
    new_markup: uint256

WAD: constant(int256) = wad.WAD
HARD_VOL_FLOOR: constant(uint256) = 10**15
HARD_VOL_CEIL: constant(uint256) = 10 * 10**18
HARD_MAX_SKEW: constant(uint256) = 10 * 10**18
HARD_MAX_HEARTBEAT: constant(uint256) = 86400
HARD_MAX_STALE_MARKUP: constant(uint256) = 10 * 10**18
MAX_PRICE: constant(uint256) = 10**36
# Storage layout: each entry is one slot (`_entries`) and the parameters every read needs are
# one slot (`_limits_word`), both in contracts/math/smile.vy's packed forms, so a batch pays one
# cold read for the limits and one per distinct expiry. The hard bounds keep every field in its
# lane: atm <= 1e19 < 2**96, |skew| <= 1e19 < 2**95, vol_min <= vol_max <= 1e19 < 2**64,
# heartbeat <= 86400, markup <= 1e19 < 2**64.

is_feeder: public(HashMap[address, bool])

_limits_word: uint256
max_change: public(uint256)
max_skew: public(uint256)

_entries: HashMap[uint256, uint256]


@deploy
def __init__(
    vol_min_: uint256,
    vol_max_: uint256,
    max_change_: uint256,
    max_skew_: uint256,
    vol_heartbeat_: uint256,
    stale_markup_: uint256,
):
    """
    @notice Deploy with its parameters and no feeder; the deployer is the owner.
    @dev Each parameter is checked as by its setter (same revert reasons).
    @param vol_min_ Lowest volatility answered and accepted (wad).
    @param vol_max_ Highest volatility answered and accepted (wad).
    @param max_change_ Largest ATM move of one update (absolute wad).
    @param max_skew_ Largest |skew| accepted (wad).
    @param vol_heartbeat_ Seconds an entry stays fresh.
    @param stale_markup_ Relative markup (wad) applied to a stale entry's volatility.
    """
    ownable.__init__()
    self._set_vol_bounds(vol_min_, vol_max_)
    self._set_max_change(max_change_)
    self._set_max_skew(max_skew_)
    self._set_vol_heartbeat(vol_heartbeat_)
    self._set_stale_markup(stale_markup_)


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


@external
@view
def sigma(expiry: uint256, strike: uint256, forward: uint256) -> uint256:
    """
    @notice Volatility for an option (expiry, strike) on a forward, per the contract notice.
    @dev Reverts "vol: no entry" for an expiry never fed, "vol: strike out of range" or
         "vol: forward out of range" outside (0, 1e36]. A stale entry answers the marked-up
         (higher) value. The result always lies in [vol_min, vol_max].
         Gas, cold (bench/gas_oracle.py; Venom pipeline): about 5,200 at the money, 6,000
         off the money (one ln_wad), 6,100 stale (the limits are one storage word).
    @param expiry The expiry, unix seconds.
    @param strike K, a wad.
    @param forward F, a wad.
    @return sigma, a wad.
    """
    return self._sigma(expiry, strike, forward)


@external
@view
def packed_entries(expiries: DynArray[uint256, MAX_BATCH]) -> (uint256, DynArray[uint256, MAX_BATCH]):
    """
    @notice The packed limits and the packed entries of several expiries, in one call: what
            the margin engine hands to the RiskCalculator, which evaluates `sigma` from them
            (contracts/math/smile.vy has the layout and the formula).
    @dev Expiry 0 answers 0 (the engine's "no expiry"); any other expiry never fed reverts
         "vol: no entry". An entry is answered as stored, fresh or stale: the formula marks a
         stale one up at the time it is evaluated.
    @param expiries The expiries, unix seconds (0 for none).
    @return (limits, entries): the packed limits and one packed entry per expiry, in order.
    """
    entries: DynArray[uint256, MAX_BATCH] = []
    for expiry: uint256 in expiries:
        packed: uint256 = 0
        if expiry != 0:
            packed = self._entries[expiry]
            assert packed != 0, "vol: no entry"
        entries.append(packed)
    return self._limits_word, entries


@internal
@view
def _limits() -> smile.Limits:
    return smile.unpack_limits(self._limits_word)


@internal
@view
def _sigma(expiry: uint256, strike: uint256, forward: uint256) -> uint256:
    """
    @dev The volatility answer of `sigma` (see there).
    """
    packed: uint256 = self._entries[expiry]
    assert packed != 0, "vol: no entry"
    assert strike != 0 and strike <= MAX_PRICE, "vol: strike out of range"
    assert forward != 0 and forward <= MAX_PRICE, "vol: forward out of range"
    ln_fk: int256 = 0
    if strike != forward and not smile.is_flat(packed):
        # 0 < F, K <= 1e36: black76's domain; the conversions are exact.
        ln_fk = black76.log_moneyness(convert(forward, int256), convert(strike, int256))
    # The smile's answer lies in [vol_min, vol_max]: the conversion is exact.
    return convert(smile.sigma(packed, self._limits_word, ln_fk, block.timestamp), uint256)


@external
@view
def entry(expiry: uint256) -> VolEntry:
    """
    @notice The stored entry of an expiry (all zero if never fed).
    @param expiry The expiry, unix seconds.
    @return (atm, skew, updated_at) as last pushed.
    """
    packed: uint256 = self._entries[expiry]
    if packed == 0:
        return empty(VolEntry)
    atm: uint256 = 0
    skew: int256 = 0
    updated_at: uint256 = 0
    atm, skew, updated_at = smile.unpack_entry(packed)
    return VolEntry(atm=atm, skew=skew, updated_at=updated_at)


@external
@view
def has_entry(expiry: uint256) -> bool:
    """
    @notice Whether the expiry has ever been fed (sigma() reverts "vol: no entry" otherwise).
    @param expiry The expiry, unix seconds.
    @return True if an entry exists.
    """
    return self._entries[expiry] != 0


@external
@view
def is_fresh(expiry: uint256) -> bool:
    """
    @notice Whether the expiry has an entry no older than vol_heartbeat seconds.
    @param expiry The expiry, unix seconds.
    @return True if sigma() answers the entry unmarked.
    """
    packed: uint256 = self._entries[expiry]
    if packed == 0:
        return False
    # updated_at <= block.timestamp: no underflow.
    return unsafe_sub(block.timestamp, packed >> 192) <= self._limits().heartbeat


@external
@view
def vol_min() -> uint256:
    """
    @notice Lowest volatility answered and accepted.
    @return A wad.
    """
    return self._limits().vol_min


@external
@view
def vol_max() -> uint256:
    """
    @notice Highest volatility answered and accepted.
    @return A wad.
    """
    return self._limits().vol_max


@external
@view
def vol_heartbeat() -> uint256:
    """
    @notice Seconds an entry stays fresh.
    @return Seconds.
    """
    return self._limits().heartbeat


@external
@view
def stale_markup() -> uint256:
    """
    @notice Relative markup applied to a stale entry's volatility.
    @return A wad (0.5e18 = +50%).
    """
    return self._limits().stale_markup


# ---------------------------------------------------------------------------------------------
# Feeders
# ---------------------------------------------------------------------------------------------


@external
def update(expiry: uint256, atm: uint256, skew: int256):
    """
    @notice Push the ATM volatility and skew of an expiry.
    @dev Feeders only ("vol: not a feeder"). Reverts "vol: expiry in the past" unless expiry >
         block.timestamp, "vol: atm out of bounds" outside [vol_min, vol_max], "vol: skew out
         of bounds" when |skew| > max_skew, "vol: change too large" when |atm - previous| >
         max_change, previous being the last ATM clamped to [vol_min, vol_max].
    @param expiry The expiry, unix seconds.
    @param atm ATM volatility, a wad.
    @param skew d(sigma) / d(ln(K/F)), a signed wad.
    """
    assert self.is_feeder[msg.sender], "vol: not a feeder"
    assert expiry > block.timestamp, "vol: expiry in the past"
    limits: smile.Limits = self._limits()
    lo: uint256 = limits.vol_min
    hi: uint256 = limits.vol_max
    assert atm >= lo and atm <= hi, "vol: atm out of bounds"
    # max_skew <= 1e19: the conversion is exact (and abs(min int256) cannot be reached).
    bound: int256 = convert(self.max_skew, int256)
    assert skew >= -bound and skew <= bound, "vol: skew out of bounds"
    packed: uint256 = self._entries[expiry]
    if packed != 0:
        previous: uint256 = min(max(smile.unpack_entry(packed)[0], lo), hi)
        # Both values are at most vol_max <= 1e19: no underflow in either branch.
        change: uint256 = 0
        if atm > previous:
            change = unsafe_sub(atm, previous)
        else:
            change = unsafe_sub(previous, atm)
        assert change <= self.max_change, "vol: change too large"
    # atm <= 1e19 < 2**96, |skew| <= 1e19 < 2**95 and block.timestamp < 2**64: the lanes hold.
    self._entries[expiry] = smile.pack_entry(atm, skew, block.timestamp)
    log VolUpdated(expiry=expiry, atm=atm, skew=skew, feeder=msg.sender)


# ---------------------------------------------------------------------------------------------
# Owner
# ---------------------------------------------------------------------------------------------


@external
def add_feeder(feeder: address):
    """
    @notice Authorise a feeder.
    @dev Owner only ("ownable: not owner"). Reverts "vol: zero address" or "vol: already a feeder".
    @param feeder The address (the keeper's hot wallet).
    """
    ownable.check_owner()
    assert feeder != empty(address), "vol: zero address"
    assert not self.is_feeder[feeder], "vol: already a feeder"
    self.is_feeder[feeder] = True
    log FeederAdded(feeder=feeder)


@external
def remove_feeder(feeder: address):
    """
    @notice Revoke a feeder.
    @dev Owner only. Reverts "vol: not a feeder" if it is not one.
    @param feeder The address.
    """
    ownable.check_owner()
    assert self.is_feeder[feeder], "vol: not a feeder"
    self.is_feeder[feeder] = False
    log FeederRemoved(feeder=feeder)


@external
def set_vol_bounds(vol_min_: uint256, vol_max_: uint256):
    """
    @notice Set the volatility bounds (together, so they never cross).
    @dev Owner only. Reverts "vol: bad bounds" unless 1e15 <= vol_min_ <= vol_max_ <= 1e19.
    @param vol_min_ Lowest volatility (wad).
    @param vol_max_ Highest volatility (wad).
    """
    ownable.check_owner()
    self._set_vol_bounds(vol_min_, vol_max_)


@external
def set_max_change(max_change_: uint256):
    """
    @notice Set the largest ATM move of one update.
    @dev Owner only. Reverts "vol: bad max_change" unless 0 < max_change_ <= 1e19.
    @param max_change_ Absolute wad.
    """
    ownable.check_owner()
    self._set_max_change(max_change_)


@external
def set_max_skew(max_skew_: uint256):
    """
    @notice Set the largest |skew| accepted.
    @dev Owner only. Reverts "vol: bad max_skew" above 1e19.
    @param max_skew_ Wad.
    """
    ownable.check_owner()
    self._set_max_skew(max_skew_)


@external
def set_vol_heartbeat(vol_heartbeat_: uint256):
    """
    @notice Set how long an entry stays fresh.
    @dev Owner only. Reverts "vol: bad heartbeat" unless 1 <= vol_heartbeat_ <= 86400.
    @param vol_heartbeat_ Seconds.
    """
    ownable.check_owner()
    self._set_vol_heartbeat(vol_heartbeat_)


@external
def set_stale_markup(stale_markup_: uint256):
    """
    @notice Set the relative markup of a stale entry's volatility.
    @dev Owner only. Reverts "vol: bad stale markup" above 1e19 (+1000%).
    @param stale_markup_ Wad (0.5e18 = +50%).
    """
    ownable.check_owner()
    self._set_stale_markup(stale_markup_)


# ---------------------------------------------------------------------------------------------
# Internal
# ---------------------------------------------------------------------------------------------


@internal
def _set_vol_bounds(vol_min_: uint256, vol_max_: uint256):
    assert (
        vol_min_ >= HARD_VOL_FLOOR and vol_min_ <= vol_max_ and vol_max_ <= HARD_VOL_CEIL
    ), "vol: bad bounds"
    limits: smile.Limits = self._limits()
    log VolBoundsSet(
        old_vol_min=limits.vol_min, old_vol_max=limits.vol_max, new_vol_min=vol_min_, new_vol_max=vol_max_
    )
    limits.vol_min = vol_min_
    limits.vol_max = vol_max_
    self._limits_word = smile.pack_limits(limits)


@internal
def _set_max_change(max_change_: uint256):
    assert max_change_ != 0 and max_change_ <= HARD_VOL_CEIL, "vol: bad max_change"
    log MaxChangeSet(old_max_change=self.max_change, new_max_change=max_change_)
    self.max_change = max_change_


@internal
def _set_max_skew(max_skew_: uint256):
    assert max_skew_ <= HARD_MAX_SKEW, "vol: bad max_skew"
    log MaxSkewSet(old_max_skew=self.max_skew, new_max_skew=max_skew_)
    self.max_skew = max_skew_


@internal
def _set_vol_heartbeat(vol_heartbeat_: uint256):
    assert vol_heartbeat_ != 0 and vol_heartbeat_ <= HARD_MAX_HEARTBEAT, "vol: bad heartbeat"
    limits: smile.Limits = self._limits()
    log VolHeartbeatSet(old_heartbeat=limits.heartbeat, new_heartbeat=vol_heartbeat_)
    limits.heartbeat = vol_heartbeat_
    self._limits_word = smile.pack_limits(limits)


@internal
def _set_stale_markup(stale_markup_: uint256):
    assert stale_markup_ <= HARD_MAX_STALE_MARKUP, "vol: bad stale markup"
    limits: smile.Limits = self._limits()
    log StaleMarkupSet(old_markup=limits.stale_markup, new_markup=stale_markup_)
    limits.stale_markup = stale_markup_
    self._limits_word = smile.pack_limits(limits)
