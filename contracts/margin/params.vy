# pragma version ~=0.4.3
# pragma optimize gas
"""
@title params: Kappa's margin parameters, their hard bounds, packing and readers
@license MIT
@notice The one home of the risk admin's margin parameters: the hard bounds the risk admin
        cannot leave (stated once, here), the six storage words MarginEngine keeps them in, and
        the readers that turn those words back into the risk module's `Mode` and `Grid`.
        RiskCalculator checks and packs (`check`, `pack`); the engine only reads, so its
        bytecode carries the readers alone.

        Layout: six words of three 85-bit lanes (every bounded value is below 2**65, so lanes
        never overlap):
            0: [MM k, MM v, MM a]
            1: [MM conf, MM haircut, u_max]
            2: [u_min, tau_ref, tau_floor]
            3: [v_max, ref_vol, n | horizon << 8 | max_positions << 64 | MM a_perp_bp << 72]
            4: [IM k, IM v, IM a]
            5: [IM conf, IM haircut, IM a_perp_bp]
        with a_perp_bp the perp contingency in basis points (at most 2,000: 11 bits, so the
        third lane of word 3 ends below bit 83). A maintenance check reads words 0-3, an
        initial-margin check all six.

        Hard bounds (all wads but n, horizon and max_positions):
            MM k in [1, 20], v in [0, 1], a in [0, 0.2], conf in [0, 1], haircut in [0, 0.5],
            a_perp in [0, 0.2] in whole basis points;
            every IM parameter at least its MM counterpart and within the same upper bound;
            n in [1, 10]; horizon in [1 hour, 30 days]; 0 <= u_min <= u_max <= 0.9;
            0 < tau_floor <= tau_ref <= 1; v_max in [0, 1]; ref_vol in [0.01, 10];
            max_positions in [1, 32].
        keeper/margin.py's `MarginParams` checks exactly these bounds.
"""

from contracts.math import wad
from contracts.margin import risk

LANE: constant(uint256) = 85
LANE_MASK: constant(uint256) = 2**85 - 1

WAD: constant(int256) = wad.WAD
# One basis point as a wad: the unit a_perp is stored in.
BP: constant(int256) = 10**14
MAX_K: constant(int256) = 20 * WAD
MAX_V: constant(int256) = WAD
MAX_A: constant(int256) = WAD // 5
MAX_CONF: constant(int256) = WAD
MAX_HAIRCUT: constant(int256) = WAD // 2
MAX_N: constant(uint256) = 10
MIN_HORIZON: constant(uint256) = 3600
MAX_HORIZON: constant(uint256) = 30 * 86400
MAX_U: constant(int256) = WAD * 9 // 10
MAX_TAU_REF: constant(int256) = WAD
MAX_V_MAX: constant(int256) = WAD
MIN_REF_VOL: constant(uint256) = 10**16
MAX_REF_VOL: constant(uint256) = 10 * 10**18
MAX_POSITIONS: constant(uint256) = 32


@internal
@pure
def check(im: risk.Mode, mm: risk.Mode, grid: risk.Grid, ref_vol: uint256, max_positions: uint256):
    """
    @dev Revert "engine: bad params" unless MM, the grid, ref_vol and max_positions are within
         the hard bounds above, and "engine: IM weaker than MM" unless every IM parameter is
         at least its MM counterpart and within the same upper bound.
    """
    assert (
        mm.k >= WAD and mm.k <= MAX_K and mm.v >= 0 and mm.v <= MAX_V
        and mm.a >= 0 and mm.a <= MAX_A and mm.conf >= 0 and mm.conf <= MAX_CONF
        and mm.haircut >= 0 and mm.haircut <= MAX_HAIRCUT
        and mm.a_perp >= 0 and mm.a_perp <= MAX_A and mm.a_perp % BP == 0 and im.a_perp % BP == 0
        and grid.n >= 1 and grid.n <= MAX_N and grid.horizon >= MIN_HORIZON and grid.horizon <= MAX_HORIZON
        and grid.u_min >= 0 and grid.u_min <= grid.u_max and grid.u_max <= MAX_U
        and grid.tau_floor > 0 and grid.tau_floor <= grid.tau_ref and grid.tau_ref <= MAX_TAU_REF
        and grid.v_max >= 0 and grid.v_max <= MAX_V_MAX
        and ref_vol >= MIN_REF_VOL and ref_vol <= MAX_REF_VOL
        and max_positions >= 1 and max_positions <= MAX_POSITIONS
    ), "engine: bad params"
    assert (
        im.k >= mm.k and im.k <= MAX_K and im.v >= mm.v and im.v <= MAX_V
        and im.a >= mm.a and im.a <= MAX_A and im.conf >= mm.conf and im.conf <= MAX_CONF
        and im.haircut >= mm.haircut and im.haircut <= MAX_HAIRCUT
        and im.a_perp >= mm.a_perp and im.a_perp <= MAX_A
    ), "engine: IM weaker than MM"


@internal
@pure
def pack(im: risk.Mode, mm: risk.Mode, grid: risk.Grid, ref_vol: uint256, max_positions: uint256) -> uint256[6]:
    """
    @dev The six storage words of the layout above, after `check` (which makes every lane fit).
    """
    self.check(im, mm, grid, ref_vol, max_positions)
    return [
        self._lanes(mm.k, mm.v, mm.a),
        self._lanes(mm.conf, mm.haircut, grid.u_max),
        self._lanes(grid.u_min, grid.tau_ref, grid.tau_floor),
        self._lanes(
            grid.v_max, convert(ref_vol, int256),
            convert(grid.n | (grid.horizon << 8) | (max_positions << 64) | (convert(mm.a_perp // BP, uint256) << 72), int256),
        ),
        self._lanes(im.k, im.v, im.a),
        self._lanes(im.conf, im.haircut, im.a_perp // BP),
    ]


@internal
@pure
def mode(first: uint256, second: uint256, a_perp_bp: uint256) -> risk.Mode:
    """
    @dev A mode's parameters from its two words (0-1 for MM, 4-5 for IM) and its perp
         contingency in basis points (`mm_a_perp_bp` of word 3, or word 5's third lane).
    """
    return risk.Mode(
        k=self._lane(first, 0), v=self._lane(first, LANE), a=self._lane(first, 2 * LANE),
        conf=self._lane(second, 0), haircut=self._lane(second, LANE),
        a_perp=convert(a_perp_bp, int256) * BP,
    )


@internal
@pure
def mm_a_perp_bp(fourth: uint256) -> uint256:
    """
    @dev MM's perp contingency in basis points, from word 3.
    """
    return (fourth >> (2 * LANE + 72)) & 2047


@internal
@pure
def im_a_perp_bp(sixth: uint256) -> uint256:
    """
    @dev IM's perp contingency in basis points, from word 5.
    """
    return (sixth >> (2 * LANE)) & LANE_MASK


@internal
@pure
def grid(second: uint256, third: uint256, fourth: uint256) -> risk.Grid:
    """
    @dev The grid parameters from words 1-3.
    """
    return risk.Grid(
        n=(fourth >> (2 * LANE)) & 255, horizon=(fourth >> (2 * LANE + 8)) & (2**56 - 1),
        u_min=self._lane(third, 0), u_max=self._lane(second, 2 * LANE),
        tau_ref=self._lane(third, LANE), tau_floor=self._lane(third, 2 * LANE), v_max=self._lane(fourth, 0),
    )


@internal
@pure
def ref_vol(fourth: uint256) -> uint256:
    """
    @dev The configured reference vol (a wad) from word 3.
    """
    return (fourth >> LANE) & LANE_MASK


@internal
@pure
def max_positions(fourth: uint256) -> uint256:
    """
    @dev Positions per account from word 3.
    """
    return (fourth >> (2 * LANE + 64)) & 255


@internal
@pure
def _lane(word: uint256, offset: uint256) -> int256:
    return convert((word >> offset) & LANE_MASK, int256)


@internal
@pure
def _lanes(a: int256, b: int256, c: int256) -> uint256:
    return convert(a, uint256) | (convert(b, uint256) << LANE) | (convert(c, uint256) << (2 * LANE))
