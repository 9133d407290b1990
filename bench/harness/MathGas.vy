# pragma version ~=0.4.3
"""
@title MathGas: gas of each math-module function, measured around the internal call
@notice Benchmark harness only (never deployed). Each `gas_*` returns the function's result and
        the gas spent between two reads of msg.gas around the internal call; `gas_baseline_*`
        measures the same frame around a plain copy, which bench/math.py subtracts.
"""

from contracts.math import wad
from contracts.math import normal
from contracts.math import black76


@external
@view
def gas_baseline_int(x: int256) -> (int256, uint256):
    g: uint256 = msg.gas
    r: int256 = x
    return r, g - msg.gas


@external
@view
def gas_baseline_uint(x: uint256) -> (uint256, uint256):
    g: uint256 = msg.gas
    r: uint256 = x
    return r, g - msg.gas


@external
@view
def gas_baseline_option(forward: uint256, strike: uint256, tau: uint256, sigma: uint256, is_call: bool) -> (uint256, uint256):
    g: uint256 = msg.gas
    r: uint256 = forward
    return r, g - msg.gas


@external
@view
def gas_exp_wad(x: int256) -> (int256, uint256):
    g: uint256 = msg.gas
    r: int256 = wad.exp_wad(x)
    return r, g - msg.gas


@external
@view
def gas_ln_wad(x: int256) -> (int256, uint256):
    g: uint256 = msg.gas
    r: int256 = wad.ln_wad(x)
    return r, g - msg.gas


@external
@view
def gas_sqrt_wad(x: uint256) -> (uint256, uint256):
    g: uint256 = msg.gas
    r: uint256 = wad.sqrt_wad(x)
    return r, g - msg.gas


@external
@view
def gas_cdf(x: int256) -> (int256, uint256):
    g: uint256 = msg.gas
    r: int256 = normal.cdf(x)
    return r, g - msg.gas


@external
@view
def gas_pdf(x: int256) -> (int256, uint256):
    g: uint256 = msg.gas
    r: int256 = normal.pdf(x)
    return r, g - msg.gas


@external
@view
def gas_price(forward: uint256, strike: uint256, tau: uint256, sigma: uint256, is_call: bool) -> (uint256, uint256):
    g: uint256 = msg.gas
    r: uint256 = black76.price(forward, strike, tau, sigma, is_call)
    return r, g - msg.gas


@external
@view
def gas_greeks(forward: uint256, strike: uint256, tau: uint256, sigma: uint256, is_call: bool) -> (uint256, uint256):
    g: uint256 = msg.gas
    r: black76.Greeks = black76.greeks(forward, strike, tau, sigma, is_call)
    return r.price, g - msg.gas
