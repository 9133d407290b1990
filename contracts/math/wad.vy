# pragma version ~=0.4.3
# pragma optimize gas
"""
@title wad: 18-decimal fixed point: rounding-directed products and quotients, exp, ln, sqrt
@license MIT
@notice Pure module. A "wad" is a fixed-point number with 18 decimals: 1e18 means 1.0.
        Import it with `from contracts.math import wad` and call `wad.exp_wad(x)`.

        Rounding: `mul_down`, `mul_up`, `div_up`, `floor_wad` and `ceil_div` are the one home of
        the protocol's rounding directions (DESIGN: a credit rounds down, a debit up). Each
        names its direction toward -infinity or +infinity, so a signed value rounds the same
        way whichever side of zero it is on.

        Internally the functions work in Q96 (value * 2**96), which carries ~29 significant
        digits, so the only visible error is the final rounding to a wad plus the stated
        approximation error (below 2e-19 relative for every function here).

        Unchecked arithmetic: every `unsafe_*` and shift below carries a comment with the
        bound that makes it safe, derived from the asserted input domain.

        Constants and coefficients come from `tools/fit_math.py` (mpmath, 80 digits).
"""

# 1.0 as a signed and as an unsigned wad: the one definition every Kappa contract uses.
WAD: constant(int256) = 10**18
UWAD: constant(uint256) = 10**18
# Seconds in the 365-day year of DESIGN's tau = (expiry - now) / YEAR and of every annual rate.
YEAR: constant(uint256) = 31_536_000
Q96: constant(int256) = 2**96
HALF_Q96: constant(int256) = 2**95
# ln(2) * 2**96, ln(1e18) * 2**96 and sqrt(2) * 2**96, rounded to nearest.
LN2_Q96: constant(int256) = 54916777467707473351141471128
LN_1E18_Q96: constant(int256) = 3283732547111784853622338894909
SQRT2_Q96: constant(int256) = 112045541949572279837463876455
# 1e18 = 2**18 * 5**18: x * 2**96 / 1e18 == (x << 78) / 5**18.
FIVE_POW_18: constant(int256) = 5**18

# e^x * 1e18 < 0.5 for x < EXP_MIN / 1e18, so the rounded result is 0.
EXP_MIN: constant(int256) = -42139678854452767622
# e^(EXP_MAX / 1e18) * 1e18 < 2**255 - 1 < e^((EXP_MAX + 1) / 1e18) * 1e18.
EXP_MAX: constant(int256) = 135305999368893231589

# atanh(s) / s ~ P(z) / Q(z) with z = s*s, |s| <= (sqrt2 - 1) / (sqrt2 + 1); rel. error 2.4e-19.
ATANH_P0: constant(int256) = 79228162514264337612600834141
ATANH_P1: constant(int256) = -102098678383276738586044462157
ATANH_P2: constant(int256) = 31767861862791217196682422040
ATANH_P3: constant(int256) = -1386675324339728522560908344
ATANH_Q1: constant(int256) = -128508065888031455235277268736
ATANH_Q2: constant(int256) = 58758251322581959647416653486
ATANH_Q3: constant(int256) = -6589454844798506807395382061

# Largest x whose x * 1e18 fits in a uint256 (the domain of sqrt_wad).
SQRT_MAX: constant(uint256) = max_value(uint256) // 10**18


@internal
@pure
def exp_wad(x: int256) -> int256:
    """
    @notice e^x for a wad x, as a wad rounded to nearest.
    @dev Domain: x <= 135.305999368893231589e18 (EXP_MAX); larger x reverts with
         "wad: exp overflow" because e^x * 1e18 would not fit an int256.
         Saturation: x < -42.139678854452767622e18 (EXP_MIN) returns 0 (the exact
         result is below half a wei).
         Method: x = k*ln2 + r with integer k and |r| <= ln2/2, then e^r by its [6/6]
         Pade approximant (E + O) / (E - O) in Q96, then the scaling by 2^k is a shift.
         Precision: relative error of e^r below 2e-19 (Pade) plus ~1e-27 (Q96 rounding);
         the result is within 1e-18 relative + 0.5 wei of e^x * 1e18.
         Gas: ~500 (see bench/results/math.json).
    @param x The exponent, a wad.
    @return e^x, a wad.
    """
    if x < EXP_MIN:
        return 0
    assert x <= EXP_MAX, "wad: exp overflow"
    # |x| < 1.36e20, so |x << 78| < 4.2e43: no overflow.
    x96: int256 = unsafe_div(x << 78, FIVE_POW_18)
    # k = round(x / ln2), |k| <= 196; (x96 << 96) < 3.3e72 fits.
    k: int256 = unsafe_add(unsafe_div(x96 << 96, LN2_Q96), HALF_Q96) >> 96
    # |r| <= ln2/2 * 2**96 (+1 ulp): r2 = r^2 < 0.121 * 2**96.
    r: int256 = unsafe_sub(x96, unsafe_mul(k, LN2_Q96))
    r2: int256 = unsafe_mul(r, r) >> 96
    # Pade [6/6] scaled by 665280: E = r^6 + 840 r^4 + 75600 r^2 + 665280,
    # O = r (42 r^4 + 10080 r^2 + 332640). Every partial sum stays below 7e5 * 2**96 < 2**116,
    # and every product below 2**116 * 2**94 = 2**210: no overflow.
    e: int256 = unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(r2, 840 * Q96), r2) >> 96,
        75600 * Q96), r2) >> 96, 665280 * Q96)
    o: int256 = unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(42, r2), 10080 * Q96), r2) >> 96,
        332640 * Q96), r) >> 96
    # E - O > 0.7 * E > 0; (E + O) << 96 < 2**117 * 2**96: no overflow. q = e^r in Q96, < 1.42 * 2**96.
    q: int256 = unsafe_div(unsafe_add(e, o) << 96, unsafe_sub(e, o))
    # q * WAD < 2**97 * 2**60: no overflow. The scaled value is the result itself, which
    # the EXP_MAX bound keeps below 2**255.
    scaled: int256 = unsafe_mul(q, WAD)
    if k >= 96:
        return scaled << convert(unsafe_sub(k, 96), uint256)
    s: uint256 = convert(unsafe_sub(96, k), uint256)
    # s in [1, 157]: the rounding term and the sum stay below 2**158.
    return unsafe_add(scaled, 1 << unsafe_sub(s, 1)) >> s


@internal
@pure
def ln_wad(x: int256) -> int256:
    """
    @notice ln(x) for a wad x > 0, as a wad rounded to nearest.
    @dev Domain: x > 0; x <= 0 reverts with "wad: ln of non-positive". Every positive
         int256 is accepted (ln(1 wei) = -41.446531673892822312e18, ln(2**255 - 1 wei)
         = 135.305999368893231589e18).
         Method: x = m * 2^e with m in [1/sqrt2, sqrt2) from the bit length, then
         ln m = 2 atanh(s), s = (m - 1)/(m + 1), |s| <= 0.1716, with atanh(s)/s as a
         [3/3] rational in s^2 (relative error 2.4e-19), all in Q96.
         Precision: within 1e-27 absolute before the final rounding: the result is within
         0.5 wei + 1e-9 wei of ln(x / 1e18) * 1e18.
         Gas: ~900 (see bench/results/math.json).
    @param x The argument, a wad.
    @return ln(x), a wad.
    """
    assert x > 0, "wad: ln of non-positive"
    u: uint256 = convert(x, uint256)
    # e = floor(log2(u)): a branch-free binary search over the bit length (inlined: it runs
    # on every call and an internal call would cost more than the search).
    e: uint256 = convert(u > 2**128 - 1, uint256) << 7
    v: uint256 = u >> e
    t: uint256 = convert(v > 2**64 - 1, uint256) << 6
    v = v >> t
    e = e | t
    t = convert(v > 2**32 - 1, uint256) << 5
    v = v >> t
    e = e | t
    t = convert(v > 2**16 - 1, uint256) << 4
    v = v >> t
    e = e | t
    t = convert(v > 2**8 - 1, uint256) << 3
    v = v >> t
    e = e | t
    t = convert(v > 2**4 - 1, uint256) << 2
    v = v >> t
    e = e | t
    t = convert(v > 2**2 - 1, uint256) << 1
    v = v >> t
    e = e | t | (v >> 1)
    # Mantissa m = u / 2^e in [1, 2), as Q96 (truncation when shifting right: < 2**-96 relative).
    m: int256 = 0
    if e >= 96:
        m = convert(u >> unsafe_sub(e, 96), int256)
    else:
        m = convert(u << unsafe_sub(96, e), int256)
    # e <= 254, so this fits an int256 after the conversion.
    ei: int256 = convert(e, int256)
    if m > SQRT2_Q96:
        m = m >> 1
        ei = unsafe_add(ei, 1)
    # m in [0.707, 1.415] * 2**96: numerator |m - 1| << 96 < 2**191, denominator > 2**96.
    s: int256 = unsafe_div(unsafe_sub(m, Q96) << 96, unsafe_add(m, Q96))
    # |s| <= 0.1716 * 2**96, z = s^2 <= 0.0295 * 2**96.
    z: int256 = unsafe_mul(s, s) >> 96
    # Horner in z: coefficients below 2**97, z below 2**91: products below 2**190.
    p: int256 = unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(ATANH_P3, z) >> 96,
        ATANH_P2), z) >> 96, ATANH_P1), z) >> 96, ATANH_P0)
    d: int256 = unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(ATANH_Q3, z) >> 96,
        ATANH_Q2), z) >> 96, ATANH_Q1), z) >> 96, Q96)
    # ln m = 2 s P/Q: |2 s P| < 2**94 * 2**97; Q > 0.9 * 2**96. |ln m| <= 0.35 * 2**96.
    ln_m: int256 = unsafe_div(unsafe_mul(s << 1, p), d)
    # |total| <= 136 * 2**96 < 2**104; total * WAD < 2**164.
    total: int256 = unsafe_sub(unsafe_add(unsafe_mul(ei, LN2_Q96), ln_m), LN_1E18_Q96)
    return unsafe_add(unsafe_mul(total, WAD), HALF_Q96) >> 96


@internal
@pure
def sqrt_wad(x: uint256) -> uint256:
    """
    @notice sqrt(x) for a wad x, as a wad rounded down: floor(sqrt(x * 1e18)).
    @dev Domain: x <= (2**256 - 1) // 1e18 (about 1.16e59, i.e. 1.16e41 units); larger x
         reverts with "wad: sqrt overflow".
         Precision: exact (the integer floor of the true root of x * 1e18).
         Method: the compiler's integer square root (Babylonian iterations from a
         bit-length estimate, then the floor correction).
         Gas: ~400 (see bench/results/math.json).
    @param x The argument, a wad.
    @return floor(sqrt(x)), a wad.
    """
    assert x <= SQRT_MAX, "wad: sqrt overflow"
    # x <= SQRT_MAX, so x * 1e18 fits.
    return isqrt(unsafe_mul(x, 10**18))



@internal
@pure
def mul_down(x: int256, y: int256) -> int256:
    """
    @dev x * y / 1e18 rounded toward -infinity (checked: reverts when x * y overflows).
    """
    product: int256 = x * y
    q: int256 = product // WAD
    if product < 0 and product % WAD != 0:
        q -= 1
    return q


@internal
@pure
def mul_up(x: int256, y: int256) -> int256:
    """
    @dev x * y / 1e18 rounded toward +infinity (checked: reverts when x * y overflows).
    """
    product: int256 = x * y
    q: int256 = product // WAD
    if product > 0 and product % WAD != 0:
        q += 1
    return q


@internal
@pure
def div_up(x: int256, y: int256) -> int256:
    """
    @dev x * 1e18 / y rounded toward +infinity, for x >= 0 and y > 0 (checked).
    """
    return (x * WAD + y - 1) // y


@internal
@pure
def floor_wad(product: int256) -> int256:
    """
    @dev floor(product / 1e18), unchecked: the caller proves |product| < 2**254, so the
         subtraction cannot overflow.
    """
    if product < 0:
        return unsafe_div(unsafe_sub(product, WAD - 1), WAD)
    return unsafe_div(product, WAD)


@internal
@pure
def ceil_div(x: int256, d: int256) -> int256:
    """
    @dev ceil(x / d), unchecked: the caller proves x >= 0, d > 0 and x + d < 2**255.
    """
    return unsafe_div(unsafe_add(x, unsafe_sub(d, 1)), d)
