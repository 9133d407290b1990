# pragma version ~=0.4.3
"""
@title PricingLens: read-only access to Kappa's on-chain math
@license MIT
@notice Exposes the pure math modules (wad, normal, black76, smile) as external views, so keepers,
        front ends and auditors can price options with exactly the code the margin engine
        runs, and compare it with their own models. It holds no state and no funds.
"""

from contracts.math import wad
from contracts.math import normal
from contracts.math import black76
from contracts.math import smile


@external
@pure
def exp_wad(x: int256) -> int256:
    """
    @notice e^x in wad. Reverts "wad: exp overflow" above 135.3e18; 0 below -42.1e18.
    @param x The exponent, a wad.
    @return e^x, a wad.
    """
    return wad.exp_wad(x)


@external
@pure
def ln_wad(x: int256) -> int256:
    """
    @notice ln(x) in wad. Reverts "wad: ln of non-positive" for x <= 0.
    @param x The argument, a wad.
    @return ln(x), a wad.
    """
    return wad.ln_wad(x)


@external
@pure
def sqrt_wad(x: uint256) -> uint256:
    """
    @notice floor(sqrt(x)) in wad. Reverts "wad: sqrt overflow" above (2**256 - 1) // 1e18.
    @param x The argument, a wad.
    @return sqrt(x), a wad rounded down.
    """
    return wad.sqrt_wad(x)


@external
@pure
def cdf(x: int256) -> int256:
    """
    @notice Standard normal distribution function Phi(x) in wad.
    @param x The point, a wad.
    @return Phi(x), a wad in [0, 1e18].
    """
    return normal.cdf(x)


@external
@pure
def pdf(x: int256) -> int256:
    """
    @notice Standard normal density phi(x) in wad.
    @param x The point, a wad.
    @return phi(x), a wad.
    """
    return normal.pdf(x)


@external
@pure
def price(forward: uint256, strike: uint256, tau: uint256, sigma: uint256, is_call: bool) -> uint256:
    """
    @notice Black-76 price (r = 0) of a European option; see black76.price for the domain.
    @param forward Forward price, a wad.
    @param strike Strike, a wad.
    @param tau Time to expiry in years, a wad.
    @param sigma Volatility, a wad (1e18 = 100%).
    @param is_call True for a call, False for a put.
    @return The option price, a wad.
    """
    return black76.price(forward, strike, tau, sigma, is_call)


@external
@pure
def greeks(forward: uint256, strike: uint256, tau: uint256, sigma: uint256, is_call: bool) -> black76.Greeks:
    """
    @notice Black-76 price, delta, gamma, vega (per 1.0 vol) and theta (per year), r = 0.
    @param forward Forward price, a wad.
    @param strike Strike, a wad.
    @param tau Time to expiry in years, a wad.
    @param sigma Volatility, a wad (1e18 = 100%).
    @param is_call True for a call, False for a put.
    @return The Greeks struct of black76.
    """
    return black76.greeks(forward, strike, tau, sigma, is_call)


@external
@pure
def log_moneyness(forward: int256, strike: int256) -> int256:
    """
    @notice ln(F/K) as the margin model and the VolOracle compute it, for 0 < F, K <= 1e36.
    @dev The domain is not checked (see black76.log_moneyness).
    @param forward F, a wad.
    @param strike K, a wad.
    @return ln(F/K), a wad.
    """
    return black76.log_moneyness(forward, strike)


@external
@pure
def smile_sigma(entry: uint256, limits: uint256, ln_fk: int256, now: uint256) -> int256:
    """
    @notice The vol of a packed VolOracle entry at ln(F/K) and time `now`: what the margin
            model prices a position with (contracts/math/smile.vy).
    @param entry The packed entry (VolOracle.packed_entries).
    @param limits The packed limits (VolOracle.packed_entries).
    @param ln_fk ln(F/K), a wad.
    @param now Unix seconds.
    @return sigma, a wad.
    """
    return smile.sigma(entry, limits, ln_fk, now)
