"""Option series ids and packed positions, as MarginEngine encodes them (pure, no chain I/O).

A series id is its terms packed into one integer, so a keeper knows the id of (expiry, strike,
is_call) without asking the chain and the engine reads a position's terms from the position
itself:

    id = (expiry // 3600) << 121 | is_call << 120 | strike        (strike a wad < 2**120)

An account's position is one storage word: id << 108 | size, the size (a wad, |size| <= 2**96)
as a 108-bit two's complement. `MarginEngine.packed_positions(account)` returns these words,
and the RiskCalculator takes them as they are (contracts/margin/positions.vy).
"""

from __future__ import annotations

EXPIRY_GRID = 3600
STRIKE_BITS = 120
SIZE_BITS = 108
_STRIKE_MASK = (1 << STRIKE_BITS) - 1
_SIZE_MASK = (1 << SIZE_BITS) - 1
# The perp's id in orders: above every option series id (contracts/margin/positions.vy).
PERP_ID = 1 << 148


def series_id(expiry: int, strike_wad: int, is_call: bool) -> int:
    """The engine's id of a series; raises ValueError for terms the engine could never list."""
    if expiry <= 0 or expiry % EXPIRY_GRID:
        raise ValueError(f"expiry {expiry} is not on the engine's hourly grid")
    if not 0 < strike_wad <= _STRIKE_MASK:
        raise ValueError(f"strike {strike_wad} is outside (0, 2**120)")
    return (expiry // EXPIRY_GRID) << (STRIKE_BITS + 1) | int(is_call) << STRIKE_BITS | strike_wad


def series_terms(sid: int) -> tuple[int, int, bool]:
    """(expiry, strike wad, is_call) of a series id."""
    expiry = (sid >> (STRIKE_BITS + 1)) * EXPIRY_GRID
    return expiry, sid & _STRIKE_MASK, bool(sid >> STRIKE_BITS & 1)


def pack_position(sid: int, size: int) -> int:
    """The engine's word of a position (what RiskCalculator takes as risk.Position.word);
    raises ValueError for a size beyond the engine's bound of 2**96."""
    if abs(size) > 1 << 96:
        raise ValueError(f"size {size} is beyond the engine's bound of 2**96")
    return sid << SIZE_BITS | (size & _SIZE_MASK)


def unpack_position(word: int) -> tuple[int, int]:
    """(series id, signed size in wad) of a packed position."""
    low = word & _SIZE_MASK
    return word >> SIZE_BITS, low - (1 << SIZE_BITS) if low >> (SIZE_BITS - 1) else low
