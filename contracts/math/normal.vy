# pragma version ~=0.4.3
# pragma optimize gas
"""
@title normal: the standard normal density and distribution function in wad
@license MIT
@notice Pure module: `from contracts.math import normal`, then `normal.cdf(x)`, `normal.pdf(x)`.
        Inputs and outputs are wads (1e18 = 1.0).

        The CDF uses the Mills ratio R(x) = (1 - Phi(x)) / phi(x): for a = |x|, the tail
        probability is Q(a) = e^(-a^2/2) * M(a) with M(a) = R(a) / sqrt(2 pi), a [9/10]
        rational fit on [0, 9] (relative error 1e-19, from tools/fit_math.py). So a CDF costs
        one exponential, one rational function and one division, and it has no cancellation
        in either tail: the small side is computed directly. `mills` is exposed because
        Black-76 prices from it directly (see black76.vy).
"""

from contracts.math import wad

WAD: constant(int256) = wad.WAD
# 1 / sqrt(2 pi) in wad, rounded to nearest.
INV_SQRT_2PI_WAD: constant(int256) = 398942280401432678
# Beyond |x| = 9 the tail 1 - Phi(9) = 1.1e-19 is below half a wei: Phi saturates.
CDF_SATURATION: constant(int256) = 9 * 10**18
# Beyond |x| = 10, phi(x) * 1e18 < 1e-4: the density is 0 in wad (and x*x cannot overflow).
PDF_CUTOFF: constant(int256) = 10 * 10**18

# Mills-ratio fit, coefficients in Q96: numerator (with 1/sqrt(2 pi) folded in) and denominator.
MILLS_P0: constant(int256) = 39614081257132168793001799077
MILLS_P1: constant(int256) = 56716785712560693604320484856
MILLS_P2: constant(int256) = 40554343864958343688614954859
MILLS_P3: constant(int256) = 18429066832518579109043305618
MILLS_P4: constant(int256) = 5790713584977899494923623806
MILLS_P5: constant(int256) = 1296544960249946472977526689
MILLS_P6: constant(int256) = 206408445715167521185851271
MILLS_P7: constant(int256) = 22549594639155307333728866
MILLS_P8: constant(int256) = 1539852412763808139758765
MILLS_P9: constant(int256) = 50455234435972041064900
MILLS_Q0: constant(int256) = 2**96
MILLS_Q1: constant(int256) = 176648499076033226950317483764
MILLS_Q2: constant(int256) = 182439716574550732706365935437
MILLS_Q3: constant(int256) = 115171359809407921467434757117
MILLS_Q4: constant(int256) = 49333201774261239852394302678
MILLS_Q5: constant(int256) = 15024820549316591664258930771
MILLS_Q6: constant(int256) = 3306227678403437582860677652
MILLS_Q7: constant(int256) = 521249042019829817847350699
MILLS_Q8: constant(int256) = 56649925392577453042210691
MILLS_Q9: constant(int256) = 3859837567719311930099947
MILLS_Q10: constant(int256) = 126472517532293766800317
FIVE_POW_18: constant(int256) = 5**18
HALF_Q96: constant(int256) = 2**95


@internal
@pure
def pdf(x: int256) -> int256:
    """
    @notice phi(x) = e^(-x^2/2) / sqrt(2 pi), the standard normal density, as a wad.
    @dev Domain: every int256. Saturation: |x| > 10e18 returns 0 (the density is below
         1e-22 there); phi(x) rounds to 0 from |x| ~ 9.2 on.
         Precision: within 2 wei of phi(x) * 1e18 (exponential 0.5 wei, exponent rounding
         below 1e-18 relative, final rounding 0.5 wei).
         Gas: ~800 (see bench/results/math.json).
    @param x The point, a wad.
    @return phi(x), a wad in [0, 0.398942280401432678e18].
    """
    if x > PDF_CUTOFF or x < -PDF_CUTOFF:
        return 0
    # |x| <= 1e19: x * x <= 1e38, no overflow; the exponent -x^2/2 is >= -50e18.
    e: int256 = wad.exp_wad(unsafe_div(unsafe_mul(x, x), -2 * WAD))
    # e <= 1e18: the product is below 4e35.
    return unsafe_div(unsafe_add(unsafe_mul(e, INV_SQRT_2PI_WAD), WAD // 2), WAD)


@internal
@pure
def cdf(x: int256) -> int256:
    """
    @notice Phi(x), the standard normal distribution function, as a wad.
    @dev Domain: every int256. Saturation: x <= -9e18 returns 0 and x >= 9e18 returns
         1e18 (the exact tail there is below 0.12 wei).
         Symmetry: cdf(x) + cdf(-x) == 1e18 exactly, by construction (both sides come
         from the same tail value).
         Precision: within 2 wei of Phi(x) * 1e18 (the tail's exponential contributes at
         most 0.5 wei * 0.5, the rational fit 1e-19 relative, the final rounding 0.5 wei;
         bench/math.py measures about 1.1 wei).
         Monotone: non-decreasing in x (tested, not proven).
         Gas: ~1,450 (see bench/results/math.json).
    @param x The point, a wad.
    @return Phi(x), a wad in [0, 1e18].
    """
    if x >= CDF_SATURATION:
        return WAD
    if x <= -CDF_SATURATION:
        return 0
    # |x| < 9e18 here, so the negation cannot overflow; x * x < 8.1e37.
    a: int256 = x
    if x < 0:
        a = unsafe_sub(0, x)
    e: int256 = wad.exp_wad(unsafe_div(unsafe_mul(x, x), -2 * WAD))
    # Upper tail e * M(a): e <= 1e18 < 2**60 and M < 2**95, so the product is below 2**155.
    tail: int256 = unsafe_add(unsafe_mul(e, self.mills(a)), HALF_Q96) >> 96
    if x < 0:
        return tail
    return unsafe_sub(WAD, tail)


@internal
@pure
def mills(a: int256) -> int256:
    """
    @notice M(a) = R(a) / sqrt(2 pi) in Q96, where R(a) = (1 - Phi(a)) / phi(a) is the Mills
            ratio; so 1 - Phi(a) = e^(-a^2/2) * M(a) / 2**96 in real terms.
    @dev Domain (not checked; the callers guarantee it): 0 <= a <= 100e18, a wad.
         Precision: relative error below 1e-19 on [0, 9e18] (the fit's range), below 1e-10
         on [9e18, 41e18] and below 7e-10 on [41e18, 100e18] (extrapolation; Black-76 needs
         it only where the term it scales is below 1e-14 of the forward, see black76.vy).
         M is decreasing from 0.4 (at 0) to 0.004 (at 100): the result is below 2**95.
    @param a The point, a non-negative wad.
    @return M(a) * 2**96.
    """
    # a in Q96: a <= 1e20, so a << 78 < 3.1e43; t < 100 * 2**96 < 2**103.
    t: int256 = unsafe_div(a << 78, FIVE_POW_18)
    # Horner, one expression per polynomial so that partial sums stay on the stack. All terms
    # are positive; for t <= 100 * 2**96 every product is below 2**248 (checked in
    # tools/fit_math.py terms: P9 * 100**9 and Q10 * 100**10 scaled by 2**96 and t).
    p: int256 = unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(
        unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(
        unsafe_mul(unsafe_add(unsafe_mul(
        MILLS_P9, t) >> 96, MILLS_P8), t) >> 96, MILLS_P7), t) >> 96, MILLS_P6), t) >> 96,
        MILLS_P5), t) >> 96, MILLS_P4), t) >> 96, MILLS_P3), t) >> 96, MILLS_P2), t) >> 96,
        MILLS_P1), t) >> 96, MILLS_P0)
    d: int256 = unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(
        unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(
        unsafe_mul(unsafe_add(unsafe_mul(unsafe_add(unsafe_mul(
        MILLS_Q10, t) >> 96, MILLS_Q9), t) >> 96, MILLS_Q8), t) >> 96, MILLS_Q7), t) >> 96,
        MILLS_Q6), t) >> 96, MILLS_Q5), t) >> 96, MILLS_Q4), t) >> 96, MILLS_Q3), t) >> 96,
        MILLS_Q2), t) >> 96, MILLS_Q1), t) >> 96, MILLS_Q0)
    # p < 2**136: p << 96 < 2**232; d >= 2**96.
    return unsafe_div(p << 96, d)
