# pragma version ~=0.4.3
# pragma optimize gas
"""
@title positions: the packed series id and position word, shared by the engine and the risk model
@license MIT
@notice Pure module; keeper/series.py is the Python counterpart.

        Series id: (expiry / 3600) << 121 | is_call << 120 | strike, with the expiry on the
        hour grid and strike < 2**120 (a wad). The id is the series' terms, so no storage
        read is needed to price a position.
        Position word: series_id << 108 | size, the signed size (wad, |size| <= 2**96) in
        108-bit two's complement. The engine stores one word per position and hands the words
        to the RiskCalculator as they are, which decodes them here.
        The perp's id, PERP_ID = 2**148, is above every option series id: orders name it to
        trade the perp (contracts/margin/PerpBook.vy), which never takes a position word.
"""

EXPIRY_GRID: constant(uint256) = 3600
STRIKE_BITS: constant(uint256) = 120
SIZE_BITS: constant(uint256) = 108
MASK_STRIKE: constant(uint256) = 2**120 - 1
MASK_SIZE: constant(uint256) = 2**108 - 1
PERP_ID: constant(uint256) = 2**148


@internal
@pure
def series_id(expiry: uint256, strike: uint256, is_call: bool) -> uint256:
    """
    @notice The id of a series (layout in the module notice).
    @dev The caller checks expiry % 3600 == 0, expiry / 3600 < 2**27 and strike < 2**120, so
         the fields do not overlap and the id is below 2**148.
    @param expiry Unix seconds, on the hour grid.
    @param strike A wad.
    @param is_call True for a call.
    @return The series id.
    """
    return ((expiry // EXPIRY_GRID) << (STRIKE_BITS + 1)) | (convert(is_call, uint256) << STRIKE_BITS) | strike


@internal
@pure
def terms(series_id: uint256) -> (uint256, uint256, bool):
    """
    @notice A series' terms from its id.
    @param series_id The id.
    @return (expiry, strike, is_call).
    """
    # series_id < 2**148 for every id this module makes: the product cannot overflow.
    return (
        unsafe_mul(series_id >> (STRIKE_BITS + 1), EXPIRY_GRID), series_id & MASK_STRIKE,
        (series_id >> STRIKE_BITS) & 1 == 1,
    )


@internal
@pure
def expiry(word: uint256) -> uint256:
    """
    @notice The expiry of a position word's series.
    @param word The position word.
    @return Unix seconds.
    """
    # The word's top bits are expiry / 3600 < 2**27: the product cannot overflow.
    return unsafe_mul(word >> (SIZE_BITS + STRIKE_BITS + 1), EXPIRY_GRID)


@internal
@pure
def pack(series_id: uint256, size: int256) -> uint256:
    """
    @notice A position word.
    @dev The caller bounds |size| <= 2**96 < 2**107 (its two's complement fits 108 bits) and
         series_id < 2**148.
    @param series_id The series id.
    @param size The signed size, a wad.
    @return The position word.
    """
    return (series_id << SIZE_BITS) | (convert(convert(size, bytes32), uint256) & MASK_SIZE)


@internal
@pure
def size(word: uint256) -> int256:
    """
    @notice The signed size of a position word.
    @param word The position word.
    @return The size, a wad.
    """
    low: uint256 = word & MASK_SIZE
    if low >= 2**107:
        # low < 2**108: the difference lies in [-2**107, 0).
        return unsafe_sub(convert(low, int256), 2**108)
    return convert(low, int256)
