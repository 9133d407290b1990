# pragma version ~=0.4.3
# pragma optimize gas
"""
@title black76: Black-76 option price and Greeks in wad, r = 0
@license MIT
@notice Pure module: `from contracts.math import black76`, then `black76.price(...)` or
        `black76.greeks(...)`. European options on a forward F with strike K, time to expiry
        tau in years and volatility sigma (1e18 = 100%), all wads, zero interest rate:

            d1 = (ln(F/K) + v^2/2) / v,  d2 = d1 - v,  v = sigma * sqrt(tau)
            call = F Phi(d1) - K Phi(d2),  put = K Phi(-d2) - F Phi(-d1)

        Rounding is to nearest; callers that book value apply their own direction.
"""

from contracts.math import wad
from contracts.math import normal

struct Greeks:
    # Option value, quote units per unit of underlying (wad).
    price: uint256
    # dV/dF: Phi(d1) for a call, Phi(d1) - 1 for a put (wad).
    delta: int256
    # d2V/dF2 = phi(d1) / (F v) (wad, per quote unit of F).
    gamma: uint256
    # dV/dsigma = F phi(d1) sqrt(tau), per 1.0 of volatility (wad).
    vega: uint256
    # dV/dt = -F phi(d1) sigma / (2 sqrt(tau)), per year (wad, <= 0).
    theta: int256

WAD: constant(int256) = wad.WAD
# Domain limits. Prices up to 1e18 quote units per unit, ten years, 1000% volatility.
MAX_PRICE: constant(uint256) = 10**36
MAX_TAU: constant(uint256) = 10 * 10**18
MAX_SIGMA: constant(uint256) = 10 * 10**18
# ln(1e18) in wad, rounded to nearest: ln(F/K) = ln_wad(F * 1e36 / K) - ln(1e18).
LN_1E18_WAD: constant(int256) = 41446531673892822312
INV_SQRT_2PI_WAD: constant(int256) = 398942280401432678
HALF_Q96: constant(int256) = 2**95
# 1e18 * 2**56: with the 40-bit shift of F e1 combo, the 2**96 of Q96 and the 1e18 of e1.
TAIL_SCALE: constant(int256) = 10**18 * 2**56
# Past |d| = 9 the CDF saturates and the Gaussian factor is below 3e-18.
D_SATURATION: constant(int256) = 9 * 10**18


@internal
@pure
def price(forward: uint256, strike: uint256, tau: uint256, sigma: uint256, is_call: bool) -> uint256:
    """
    @notice Black-76 price (r = 0) of a European call or put, as a wad.
    @dev Domain: 0 < forward, strike <= 1e36; tau <= 10e18 (ten years); sigma <= 10e18.
         Outside it reverts with "black76: forward out of range", "black76: strike out of
         range", "black76: tau out of range" or "black76: sigma out of range".
         Degenerate: when v = sigma * sqrt(tau) rounds to 0 (tau = 0 or sigma = 0 included)
         the price is the intrinsic value max(F - K, 0) or max(K - F, 0).
         Bounds: the result is clamped to the no-arbitrage range [intrinsic, F] for a call
         and [intrinsic, K] for a put, so rounding can never breach it.
         Precision: within 3e-18 * F + 2 wei of the exact price at any moneyness (see
         `price_from_log`).
         Gas: ~4,900 (see bench/results/math.json).
    @param forward F, a wad.
    @param strike K, a wad.
    @param tau Time to expiry in years, a wad.
    @param sigma Volatility (1e18 = 100%), a wad.
    @param is_call True for a call, False for a put.
    @return The option price, a wad.
    """
    self._check_domain(forward, strike, tau, sigma)
    f: int256 = convert(forward, int256)
    k: int256 = convert(strike, int256)
    v: int256 = self.total_vol(convert(sigma, int256), convert(wad.sqrt_wad(tau), int256))
    if v == 0:
        return convert(self._intrinsic(f, k, is_call), uint256)
    return convert(self.price_from_log(f, k, self.log_moneyness(f, k), v, is_call), uint256)


@internal
@pure
def greeks(forward: uint256, strike: uint256, tau: uint256, sigma: uint256, is_call: bool) -> Greeks:
    """
    @notice Black-76 price and Greeks (r = 0): price, delta, gamma, vega, theta.
    @dev Domain, reverts, bounds and the degenerate case as in `price`; when v rounds to 0
         the Greeks are those of the intrinsic payoff: delta 1 or 0 for a call (F > K or
         F < K), -1 or 0 for a put, +-0.5 at F == K; gamma, vega and theta are 0.
         Units: delta in wad (1e18 = one unit of underlying per option); gamma per quote
         unit of forward; vega per 1.0 (100 points) of volatility; theta per year (<= 0).
         Precision: price as in `price`; delta within 3 wei plus phi(d1) times the error of
         d1; gamma, vega and theta within their closed form's sensitivity to phi(d1) (1 wei)
         and to the floored sqrt(tau) and v (1 wei each) plus 2 wei: the exact bound is
         tests/mp_reference.py `greeks_tolerance`, checked against mpmath.
         Gas: ~6,000 (see bench/results/math.json).
    @param forward F, a wad.
    @param strike K, a wad.
    @param tau Time to expiry in years, a wad.
    @param sigma Volatility (1e18 = 100%), a wad.
    @param is_call True for a call, False for a put.
    @return Greeks struct.
    """
    self._check_domain(forward, strike, tau, sigma)
    f: int256 = convert(forward, int256)
    k: int256 = convert(strike, int256)
    sqrt_tau: int256 = convert(wad.sqrt_wad(tau), int256)
    v: int256 = self.total_vol(convert(sigma, int256), sqrt_tau)
    if v == 0:
        delta: int256 = 0
        if f > k:
            delta = WAD
        elif f == k:
            delta = WAD // 2
        if not is_call:
            delta = unsafe_sub(delta, WAD)
        return Greeks(price=convert(self._intrinsic(f, k, is_call), uint256), delta=delta, gamma=0, vega=0, theta=0)
    ln_fk: int256 = self.log_moneyness(f, k)
    value: int256 = self.price_from_log(f, k, ln_fk, v, is_call)
    d1: int256 = self.d1(ln_fk, v)
    # Phi(d1) and phi(d1) from e1 = e^(-d1^2/2); past |d1| = 9 both saturate (e1 = 0).
    e1: int256 = 0
    tail1: int256 = 0
    if d1 < D_SATURATION and d1 > -D_SATURATION:
        # |d1| < 9e18: the square is below 8.1e37; e1 < 2**60 and mills < 2**95.
        e1 = wad.exp_wad(unsafe_div(unsafe_mul(d1, d1), -2 * WAD))
        tail1 = unsafe_add(unsafe_mul(e1, normal.mills(max(d1, -d1))), HALF_Q96) >> 96
    delta: int256 = tail1
    if d1 >= 0:
        delta = unsafe_sub(WAD, tail1)
    if not is_call:
        delta = unsafe_sub(delta, WAD)
    # phi(d1) = e1 / sqrt(2 pi); e1 <= 1e18 so the product is below 4e35.
    pdf1: int256 = unsafe_div(unsafe_add(unsafe_mul(e1, INV_SQRT_2PI_WAD), WAD // 2), WAD)
    # F phi(d1) <= 1e36 * 4e17 = 4e53: every product below stays under 2**255.
    f_pdf: int256 = unsafe_mul(f, pdf1)
    return Greeks(
        price=convert(value, uint256),
        delta=delta,
        # phi * 1e36 / (F v): numerator <= 4e53, denominator >= 1.
        gamma=convert(unsafe_div(unsafe_mul(pdf1, 10**36), unsafe_mul(f, v)), uint256),
        # F phi sqrt(tau) / 1e36: below 4e53 * 3.2e18.
        vega=convert(unsafe_div(unsafe_mul(f_pdf, sqrt_tau), 10**36), uint256),
        # -F phi sigma / (2 sqrt(tau)): F phi (wad^2) * sigma < 4e72; sqrt_tau > 0 since v > 0.
        theta=unsafe_div(unsafe_mul(f_pdf, convert(sigma, int256)), unsafe_mul(-2 * WAD, sqrt_tau)),
    )


@internal
@pure
def price_from_log(f: int256, k: int256, ln_fk: int256, v: int256, is_call: bool) -> int256:
    """
    @notice Black-76 price from its parts: F, K, ln(F/K) and v = sigma * sqrt(tau), all wads.
    @dev The hot path for portfolio margin, which shifts F and sigma over a scenario grid and
         can reuse ln(F/K) = ln(S/K) + ln(1 + m) and sqrt(tau) across scenarios.
         Domain (not checked; the caller guarantees it): 0 < F, K <= 1e36; ln_fk within 1 wei
         of ln(F/K); 0 <= v <= 9e19 (sigma up to 28 over ten years: margin scenarios shock
         sigma upward). v == 0 gives the intrinsic value.
         Method: Phi(d) = 1[d >= 0] -+ e^(-d^2/2) M(|d|) (normal.mills), and
         K e^(-d2^2/2) = F e^(-d1^2/2) exactly, so with e1 = e^(-d1^2/2), M1 = M(|d1|),
         M2 = M(|d2|):
             d1 < 0:        call = F e1 (M1 - M2)
             d2 >= 0:       call = (F - K) + F e1 (M2 - M1)
             d2 < 0 <= d1:  call = F - F e1 (M1 + M2)
         Every tail term is scaled by F, never by K, so the error stays within ~3e-18 F at
         any moneyness (a wad Phi(d2) times K would lose K/F times that). Past |d1| = 9,
         F e1 (M1 + M2) < 3e-18 F and e1 is taken as 0. The put follows by parity, exactly
         in integers (put = call - F + K); the result is clamped to [intrinsic, F or K].
    @param f Forward, a wad.
    @param k Strike, a wad.
    @param ln_fk ln(F/K), a wad.
    @param v Total volatility sigma * sqrt(tau), a wad.
    @param is_call True for a call, False for a put.
    @return The option price, a wad.
    """
    intrinsic: int256 = 0
    if is_call:
        intrinsic = max(unsafe_sub(f, k), 0)
    else:
        intrinsic = max(unsafe_sub(k, f), 0)
    if v == 0:
        return intrinsic
    # d1 as in `d1` (inlined on this hot path): the numerator is below 4.2e39 * 1e18.
    d1: int256 = unsafe_div(unsafe_mul(unsafe_add(ln_fk, unsafe_div(unsafe_mul(v, v), 2 * WAD)), WAD), v)
    d2: int256 = unsafe_sub(d1, v)
    e1: int256 = 0
    base: int256 = 0
    combo: int256 = 0
    if d1 < D_SATURATION and d1 > -D_SATURATION:
        # |d1| < 9e18: the square is below 8.1e37.
        e1 = wad.exp_wad(unsafe_div(unsafe_mul(d1, d1), -2 * WAD))
        # |d2| = |d1 - v| < 9e18 + 9e19 < 1e20: inside the domain of normal.mills. Both are
        # far from min_value(int256), so the negations cannot overflow.
        a1: int256 = d1
        if d1 < 0:
            a1 = unsafe_sub(0, d1)
        a2: int256 = d2
        if d2 < 0:
            a2 = unsafe_sub(0, d2)
        m1: int256 = normal.mills(a1)
        m2: int256 = normal.mills(a2)
        if d1 < 0:
            combo = unsafe_sub(m1, m2)
        elif d2 >= 0:
            base = unsafe_sub(f, k)
            combo = unsafe_sub(m2, m1)
        else:
            base = f
            combo = unsafe_sub(0, unsafe_add(m1, m2))
    elif d1 > 0:
        # Phi(d1) = 1 and K Phi(d2) is K - F e1 M2 (d2 >= 0) or F e1 M2 (d2 < 0), with
        # F e1 M2 < 3e-18 F: the call is F - K or F.
        base = unsafe_sub(f, k)
        if d2 < 0:
            base = f
    # e1 < 2**60 and |combo| <= 2**96: the product is below 2**156; after the shift below
    # 2**116, and times F (< 2**120) below 2**236. Scale back by 1e18 * 2**96 (40 + 56 bits).
    value: int256 = unsafe_add(base, unsafe_div(unsafe_mul(f, unsafe_mul(e1, combo) >> 40), TAIL_SCALE))
    cap: int256 = f
    if not is_call:
        value = unsafe_add(unsafe_sub(value, f), k)
        cap = k
    return min(max(value, intrinsic), cap)


@internal
@pure
def log_moneyness(f: int256, k: int256) -> int256:
    """
    @notice ln(F/K) as a wad, for 0 < F, K <= 1e36 (not checked).
    @dev ln(F * 1e36 / K) - ln(1e18): F * 1e36 <= 1e72 < 2**255 and the quotient is >= 1, so
         the division keeps at least 18 significant digits even for F/K = 1e-36. Within
         1 wei + 1e-18 * K/F wei of the exact value.
    @param f F, a wad.
    @param k K, a wad.
    @return ln(F/K), a wad.
    """
    return unsafe_sub(wad.ln_wad(unsafe_div(unsafe_mul(f, 10**36), k)), LN_1E18_WAD)


@internal
@pure
def total_vol(sigma: int256, sqrt_tau: int256) -> int256:
    """
    @notice v = sigma * sqrt(tau), a wad rounded down, for sigma <= 1e19 and sqrt_tau <= 3.2e18.
    @param sigma Volatility, a wad.
    @param sqrt_tau sqrt(tau), a wad.
    @return v, a wad.
    """
    # The product is below 3.2e37.
    return unsafe_div(unsafe_mul(sigma, sqrt_tau), WAD)


@internal
@pure
def d1(ln_fk: int256, v: int256) -> int256:
    """
    @notice d1 = (ln(F/K) + v^2/2) / v, a wad, for v > 0 (not checked).
    @param ln_fk ln(F/K), a wad, |ln_fk| <= 83e18.
    @param v Total volatility, a wad, 0 < v <= 9e19.
    @return d1, a wad.
    """
    # |ln_fk| <= 83e18 and v^2/2 <= 4.1e21: the numerator is below 4.2e39 * 1e18 < 2**255.
    return unsafe_div(unsafe_mul(unsafe_add(ln_fk, unsafe_div(unsafe_mul(v, v), 2 * WAD)), WAD), v)


@internal
@pure
def _check_domain(forward: uint256, strike: uint256, tau: uint256, sigma: uint256):
    """
    @dev Reverts outside the documented domain of `price` and `greeks`.
    """
    assert forward > 0 and forward <= MAX_PRICE, "black76: forward out of range"
    assert strike > 0 and strike <= MAX_PRICE, "black76: strike out of range"
    assert tau <= MAX_TAU, "black76: tau out of range"
    assert sigma <= MAX_SIGMA, "black76: sigma out of range"


@internal
@pure
def _intrinsic(f: int256, k: int256, is_call: bool) -> int256:
    """
    @dev max(F - K, 0) for a call, max(K - F, 0) for a put.
    """
    if is_call:
        return max(unsafe_sub(f, k), 0)
    return max(unsafe_sub(k, f), 0)
