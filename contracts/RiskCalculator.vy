# pragma version ~=0.4.3
"""
@title RiskHarness: the risk module's functions as external views (tests and benchmarks only)
"""

from contracts.engine import risk


@external
@pure
def health(portfolio: risk.Portfolio, market: risk.Market, mode: risk.Mode, grid: risk.Grid) -> (int256, uint256):
    return risk.health(portfolio, market, mode, grid)


@external
@pure
def scenario_value(portfolio: risk.Portfolio, market: risk.Market, mode: risk.Mode, grid: risk.Grid, w: uint256) -> int256:
    return risk.scenario_value(portfolio, market, mode, grid, w)


@external
@pure
def mtm(portfolio: risk.Portfolio, market: risk.Market) -> int256:
    return risk.mtm(portfolio, market)


@external
@pure
def contingency(portfolio: risk.Portfolio, market: risk.Market, mode: risk.Mode) -> int256:
    return risk.contingency(portfolio, market, mode)


@external
@pure
def spot_shock(mode: risk.Mode, grid: risk.Grid, sigma_ref: int256) -> int256:
    return risk.spot_shock(mode, grid, sigma_ref)


@external
@pure
def vol_shock(v_mode: int256, grid: risk.Grid, tau: int256) -> int256:
    return risk.vol_shock(v_mode, grid, tau)
