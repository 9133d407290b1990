# pragma version ~=0.4.3
# pragma optimize gas
# pragma experimental-codegen
"""
@title RiskCalculator: Kappa's portfolio margin model as a stateless contract
@license MIT
@notice The risk module (contracts/margin/risk.vy, docs/margin_model.md) behind external views.
        MarginEngine reads an account from storage and its oracles, then asks this contract for
        health, scenario values, MtM and Greeks; splitting the pricing code out keeps the engine
        under the 24,576-byte contract size limit. Keepers and auditors can call it directly
        with any portfolio to reproduce the engine's numbers. It holds no state and no funds.
"""

from contracts.math import black76
from contracts.math import smile
from contracts.margin import positions
from contracts.margin import risk
from contracts.margin import interest
from contracts.margin import params
from contracts.math import wad

WAD: constant(int256) = wad.WAD


@external
@pure
def health(portfolio: risk.Portfolio, market: risk.Market, mode: risk.Mode, grid: risk.Grid) -> (int256, uint256):
    """
    @notice H = min over the scenario grid of V - contingency, and the witness scenario index.
    @param portfolio Cash, underlying and positions.
    @param market Spot, confidence, time, reference vol.
    @param mode IM or MM parameters.
    @param grid Grid parameters.
    @return (health, witness).
    """
    return risk.health(portfolio, market, mode, grid)


@external
@pure
def margin(portfolio: risk.Portfolio, market: risk.Market, im: risk.Mode, mm: risk.Mode, grid: risk.Grid) -> (int256, int256, int256):
    """
    @notice MtM, H_IM (= min(IM's grid, H_MM)) and H_MM in one call (MarginEngine.margin).
    @param portfolio Cash, underlying and positions.
    @param market Spot, confidence, time, reference vol.
    @param im Initial-margin parameters.
    @param mm Maintenance-margin parameters.
    @param grid Grid parameters.
    @return (mtm, health_im, health_mm), wads.
    """
    h_im: int256 = 0
    w: uint256 = 0
    h_mm: int256 = 0
    h_im, w, h_mm = risk.initial_health(portfolio, market, im, mm, grid)
    return risk.mtm(portfolio, market), h_im, h_mm


@external
@pure
def assess(portfolio: risk.Portfolio, market: risk.Market, mode: risk.Mode, grid: risk.Grid) -> (int256, int256, uint256):
    """
    @notice MtM, health and the witness scenario of one mode in one call (the Liquidator's bid).
    @param portfolio Cash, underlying and positions.
    @param market Spot, confidence, time, reference vol.
    @param mode IM or MM parameters.
    @param grid Grid parameters.
    @return (mtm, health, witness).
    """
    h: int256 = 0
    w: uint256 = 0
    h, w = risk.health(portfolio, market, mode, grid)
    return risk.mtm(portfolio, market), h, w


@external
@pure
def health_floor(portfolio: risk.Portfolio, market: risk.Market, mode: risk.Mode, grid: risk.Grid) -> int256:
    """
    @notice A lower bound of H that needs no vols and no grid (see risk.health_floor): when it
            is >= 0 the account is healthy in this mode.
    @param portfolio Cash, underlying and positions (smiles are not read).
    @param market Spot and confidence.
    @param mode IM or MM parameters.
    @param grid Grid parameters (u_max).
    @return The floor, a wad.
    """
    return risk.health_floor(portfolio, market, mode, grid)


@external
@pure
def is_healthy(portfolio: risk.Portfolio, market: risk.Market, mode: risk.Mode, grid: risk.Grid) -> bool:
    """
    @notice H >= 0, by the health floor when it suffices and else by the full grid (the
            engine's and the Liquidator's initial-margin checks).
    @param portfolio Cash, underlying and positions.
    @param market Spot, confidence, time, reference vol.
    @param mode IM or MM parameters.
    @param grid Grid parameters.
    @return True when H >= 0.
    """
    return risk.is_healthy(portfolio, market, mode, grid)


@external
@pure
def scenario_health(portfolio: risk.Portfolio, market: risk.Market, mode: risk.Mode, grid: risk.Grid, w: uint256) -> int256:
    """
    @notice V_w - A for one scenario: negative proves H < 0 (the witness check).
    @dev Reverts "risk: bad scenario" for an index outside the grid.
    @param portfolio Cash, underlying and positions.
    @param market Spot, confidence, time, reference vol.
    @param mode IM or MM parameters.
    @param grid Grid parameters.
    @param w Scenario index.
    @return V_w - A, a wad.
    """
    return risk.scenario_value(portfolio, market, mode, grid, w) - risk.contingency(portfolio, market, mode)


@external
@pure
def scenario_value(portfolio: risk.Portfolio, market: risk.Market, mode: risk.Mode, grid: risk.Grid, w: uint256) -> int256:
    """
    @notice V_w for one scenario (no contingency).
    @param portfolio Cash, underlying and positions.
    @param market Spot, confidence, time, reference vol.
    @param mode IM or MM parameters.
    @param grid Grid parameters.
    @param w Scenario index.
    @return V_w, a wad.
    """
    return risk.scenario_value(portfolio, market, mode, grid, w)


@external
@pure
def mtm(portfolio: risk.Portfolio, market: risk.Market) -> int256:
    """
    @notice Mark-to-market value C + b S + sum q BS(S, K, tau, sigma).
    @param portfolio Cash, underlying and positions.
    @param market Spot, time.
    @return MtM, a wad.
    """
    return risk.mtm(portfolio, market)


@external
@pure
def contingency(portfolio: risk.Portfolio, market: risk.Market, mode: risk.Mode) -> int256:
    """
    @notice The contingency A of a mode.
    @param portfolio Positions.
    @param market Spot and confidence.
    @param mode IM or MM parameters.
    @return A, a wad.
    """
    return risk.contingency(portfolio, market, mode)


@external
@pure
def reference_vol(portfolio: risk.Portfolio, market: risk.Market) -> int256:
    """
    @notice sigma_ref of an account, the vol its spot shock scales with: max(ref_vol, the ATM
            vol (VolOracle.sigma(e, S, S)) of every live expiry it holds).
    @param portfolio Cash, underlying and positions (the expiry words are read).
    @param market Spot, confidence, time, ref_vol and the vol limits.
    @return sigma_ref, a wad.
    """
    return risk.reference_vol(portfolio, market)


@external
@pure
def initial_health(portfolio: risk.Portfolio, market: risk.Market, im: risk.Mode, mm: risk.Mode, grid: risk.Grid) -> (int256, uint256, int256):
    """
    @notice H_IM = min(IM's grid health, H_MM), its witness (MM's scenario w answered as
            w + 3 (2n + 1)), and H_MM.
    @param portfolio Cash, underlying and positions.
    @param market Spot, confidence, time, ref_vol and the vol limits.
    @param im Initial-margin parameters.
    @param mm Maintenance-margin parameters.
    @param grid Grid parameters.
    @return (health_im, witness_im, health_mm), wads.
    """
    return risk.initial_health(portfolio, market, im, mm, grid)


@external
@pure
def meets_initial_margin(portfolio: risk.Portfolio, market: risk.Market, im: risk.Mode, mm: risk.Mode, grid: risk.Grid) -> bool:
    """
    @notice H_IM >= 0, by IM's health floor when it suffices, else by both grids (the
            engine's and the Liquidator's initial-margin checks).
    @param portfolio Cash, underlying and positions.
    @param market Spot, confidence, time, ref_vol and the vol limits.
    @param im Initial-margin parameters.
    @param mm Maintenance-margin parameters.
    @param grid Grid parameters.
    @return True when H_IM >= 0.
    """
    return risk.meets_initial_margin(portfolio, market, im, mm, grid)


@external
@pure
def risk_reduced(before: risk.Portfolio, after: risk.Portfolio, market: risk.Market, im: risk.Mode, mm: risk.Mode, grid: risk.Grid) -> bool:
    """
    @notice The margin rule's allowance for an account left below initial margin by an
            action: its H_IM is no lower than before, and its H_MM did not fall below
            min(its H_MM before, 0) (no action moves an account from H_MM >= 0 to < 0).
    @param before The account before the action.
    @param after The account after it.
    @param market Spot, confidence, time, ref_vol and the vol limits.
    @param im Initial-margin parameters.
    @param mm Maintenance-margin parameters.
    @param grid Grid parameters.
    @return True when the action is allowed.
    """
    im_after: int256 = 0
    w: uint256 = 0
    mm_after: int256 = 0
    im_after, w, mm_after = risk.initial_health(after, market, im, mm, grid)
    im_before: int256 = 0
    mm_before: int256 = 0
    im_before, w, mm_before = risk.initial_health(before, market, im, mm, grid)
    return im_after >= im_before and mm_after >= min(mm_before, 0)


@external
@pure
def price_band(p: risk.Position, market: risk.Market, mm: risk.Mode, grid: risk.Grid) -> (int256, int256):
    """
    @notice The fair-price band of a live series: its unit prices at the current spot in MM's
            down and up vol states (see risk.price_band).
    @param p The series as a position word (size not read) with its expiry's packed vol entry.
    @param market Spot, time and the vol limits.
    @param mm Maintenance-margin parameters.
    @param grid Grid parameters.
    @return (lowest, highest) unit price, wads.
    """
    return risk.price_band(p, market, mm, grid)


@external
@pure
def spot_shock(mode: risk.Mode, grid: risk.Grid, sigma_ref: int256) -> int256:
    """
    @notice The grid's largest relative spot move u.
    @param mode IM or MM parameters.
    @param grid Grid parameters.
    @param sigma_ref Reference vol.
    @return u, a wad.
    """
    return risk.spot_shock(mode, grid, sigma_ref)


@external
@pure
def vol_shock(v_mode: int256, grid: risk.Grid, tau: int256) -> int256:
    """
    @notice The relative vol shock of an expiry tau years away.
    @param v_mode The mode's vol-shock size.
    @param grid Grid parameters.
    @param tau Years to expiry, a wad.
    @return v(tau), a wad.
    """
    return risk.vol_shock(v_mode, grid, tau)


@external
@pure
def greeks(portfolio: risk.Portfolio, market: risk.Market) -> (int256, int256, int256, int256):
    """
    @notice Net delta (units), gamma, vega (per 1.0 vol) and theta (per year) of the options
            plus the underlying held and the perp (delta q_f); expired positions count for
            nothing.
    @param portfolio Cash, underlying, positions and the perp.
    @param market Spot and time.
    @return delta, gamma, vega, theta (wads).
    """
    delta: int256 = portfolio.underlying + portfolio.perp.size
    gamma: int256 = 0
    vega: int256 = 0
    theta: int256 = 0
    for p: risk.Position in portfolio.positions:
        expiry: uint256 = 0
        strike: int256 = 0
        is_call: bool = False
        expiry, strike, is_call = risk.terms(p.word)
        if expiry <= market.now:
            continue
        size: int256 = positions.size(p.word)
        tau: uint256 = (expiry - market.now) * 10**18 // risk.YEAR
        sigma: int256 = smile.sigma(p.expiry_word, market.vol_limits, black76.log_moneyness(market.spot, strike), market.now)
        g: black76.Greeks = black76.greeks(
            convert(market.spot, uint256), convert(strike, uint256), tau, convert(sigma, uint256), is_call
        )
        delta += size * g.delta // WAD
        gamma += size * convert(g.gamma, int256) // WAD
        vega += size * convert(g.vega, int256) // WAD
        theta += size * g.theta // WAD
    return delta, gamma, vega, theta


@external
@pure
def check_params(im: risk.Mode, mm: risk.Mode, grid: risk.Grid, ref_vol: uint256, max_positions: uint256) -> bool:
    """
    @notice Revert unless the margin parameters are within the engine's hard bounds
            (contracts/margin/params.vy states them).
    @dev Reverts "engine: bad params" outside the bounds and "engine: IM weaker than MM"
         unless every IM parameter is at least its MM counterpart (so H_IM <= H_MM on the
         same grid).
    @param im Initial-margin parameters.
    @param mm Maintenance-margin parameters.
    @param grid Grid parameters.
    @param ref_vol Reference vol, a wad.
    @param max_positions Positions per account.
    @return True (it reverts otherwise).
    """
    params.check(im, mm, grid, ref_vol, max_positions)
    return True


@external
@pure
def pack_params(im: risk.Mode, mm: risk.Mode, grid: risk.Grid, ref_vol: uint256, max_positions: uint256) -> uint256[6]:
    """
    @notice Check the margin parameters as `check_params` does and pack them in the six words
            MarginEngine stores (the layout is contracts/margin/params.vy's).
    @dev Reverts as `check_params`.
    @param im Initial-margin parameters.
    @param mm Maintenance-margin parameters.
    @param grid Grid parameters.
    @param ref_vol Reference vol, a wad.
    @param max_positions Positions per account.
    @return The six words.
    """
    return params.pack(im, mm, grid, ref_vol, max_positions)


@external
@pure
def pack_interest_params(base: uint256, slope1: uint256, slope2: uint256, kink: uint256, reserve_factor: uint256, cap: uint256) -> uint256:
    """
    @notice Check the cash pool's interest parameters against the engine's hard bounds and
            pack the rate's five into the lane MarginEngine stores (contracts/margin/interest.vy
            `pack_params`: the bounds and the layout).
    @dev Reverts "engine: bad interest params".
    @param base Rate at zero utilization, a wad per year.
    @param slope1 Rate per unit of utilization below the kink.
    @param slope2 Rate per unit of utilization above the kink.
    @param kink The kink utilization.
    @param reserve_factor Share of the interest paid to the insurance fund.
    @param cap Utilization cap on new borrowing.
    @return The packed 64-bit lane.
    """
    return interest.pack_params(base, slope1, slope2, kink, reserve_factor, cap)
