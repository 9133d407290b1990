"""Calculator inputs built by hand: packed vol entries and limits (contracts/math/smile.vy) and
the Market, Portfolio and Position tuples of contracts/margin/risk.vy.

A position is (word, mark): the engine's position word (keeper/series.py) and, while live, its
expiry's packed vol entry, once expired its settlement price. Tests that price a portfolio at a
chosen vol give each live position a flat smile (skew 0) whose ATM vol is that vol, under limits
wide enough that the clamp never binds: the calculator then prices it at exactly that vol.
"""

from __future__ import annotations

from keeper import series

WAD = 10**18
SKEW_OFFSET = 2**95

# vol_min 0.1%, vol_max 1000% (the VolOracle's hard bounds), a day's heartbeat, no markup.
OPEN_BOUNDS = (10**15, 10 * WAD, 86_400, 0)


def pack_entry(atm: int, skew: int, updated_at: int) -> int:
    """A VolOracle entry's word: atm | (skew + 2**95) << 96 | updated_at << 192."""
    return atm | ((skew + SKEW_OFFSET) << 96) | (updated_at << 192)


def pack_limits(vol_min: int, vol_max: int, heartbeat: int, stale_markup: int) -> int:
    """The VolOracle limits' word: vol_min | vol_max << 64 | heartbeat << 128 | markup << 192."""
    return vol_min | (vol_max << 64) | (heartbeat << 128) | (stale_markup << 192)


OPEN_LIMITS = pack_limits(*OPEN_BOUNDS)

# risk.PerpTerms (size, price, owed) of an account without a perp.
NO_PERP = (0, 0, 0)


def flat_smile(sigma: int, now: int) -> int:
    """An entry fresh at `now` that answers `sigma` at every strike (0 for no entry)."""
    return pack_entry(sigma, 0, now) if sigma else 0


def market(
    spot: int,
    confidence: int,
    now: int,
    ref_vol: int,
    limits: int = OPEN_LIMITS,
) -> tuple[int, int, int, int, int]:
    """risk.Market: ref_vol is the floor of each account's sigma_ref (the ATM vols of the live
    expiries it holds raise it)."""
    return (spot, confidence, now, ref_vol, limits)


def portfolio(
    cash: int,
    underlying: int,
    positions: list[tuple[int, int]],
    perp: tuple[int, int, int] = NO_PERP,
) -> tuple[int, int, list[tuple[int, int]], tuple[int, int, int]]:
    """risk.Portfolio: cash, underlying, positions and the perp's (size, price, owed)."""
    return (cash, underlying, positions, perp)


def position(
    strike: int, expiry: int, is_call: bool, size: int, sigma: int, settlement: int, now: int
) -> tuple[int, int]:
    """risk.Position: live (expiry > now), priced at `sigma` (a flat smile fresh at `now`);
    expired, valued at `settlement` (0: not settled yet). The expiry must be on the hour grid."""
    word = series.pack_position(series.series_id(expiry, strike, is_call), size)
    return (word, flat_smile(sigma, now) if expiry > now else settlement)


def unpack(position: tuple[int, int], now: int) -> tuple[int, int, bool, int, int]:
    """(strike, expiry, is_call, size, settlement) of a risk.Position; settlement 0 while live."""
    word, mark = position
    sid, size = series.unpack_position(word)
    expiry, strike, is_call = series.series_terms(sid)
    return strike, expiry, is_call, size, mark if expiry <= now else 0
