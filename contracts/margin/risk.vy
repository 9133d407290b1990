# pragma version ~=0.4.3
# pragma optimize gas
"""
@title risk: Kappa's portfolio margin model, a pure module
@license MIT
@notice The margin model of DESIGN.md exactly as docs/margin_model.md pins it, on plain data the
        engine reads from storage and its oracles: mark-to-market, the scenario grid of spot
        points and vol states, the contingencies, health and the witness scenario.
        keeper/margin.py implements the same rules in float64; tests/differential checks that
        they agree.

        Scenario index (the witness): w = s * (2n + 1) + (j + n), with vol state s = 0 down,
        1 flat, 2 up and spot point j = -n .. n; so w < 3 (2n + 1) <= 63.

        Rounding favours the protocol: in every value a long option or collateral term rounds
        down and a short option term rounds up in magnitude; contingencies round up. Each option
        price itself is Black-76 rounded to nearest (within 2 wei + 3e-18 of the forward).
"""

from contracts.math import wad
from contracts.math import black76
from contracts.math import smile
from contracts.margin import positions

WAD: constant(int256) = wad.WAD
YEAR: constant(uint256) = wad.YEAR
MAX_POSITIONS: constant(uint256) = 32
MAX_POINTS: constant(uint256) = 21
MAX_SCENARIOS: constant(uint256) = 63


struct Position:
    # The position word as the engine stores it (contracts/margin/positions.vy): the series'
    # expiry, strike (a wad in (0, 1e36]) and type, and the signed size in units of the
    # underlying (wad, |size| <= 2**96; long > 0).
    word: uint256
    # The one word the engine keeps for the position's expiry, which prices the position:
    # while the expiry is ahead (expiry > now) its VolOracle entry, packed
    # (contracts/math/smile.vy), so the position's vol is smile.sigma(expiry_word, vol_limits,
    # ln(S/K), now), VolOracle.sigma(expiry, strike, spot); once expired, the expiry's
    # settlement price (wad), 0 until recorded.
    expiry_word: uint256


struct PerpTerms:
    # The account's perpetual future as the margin model sees it (PerpBook.margin_terms): the
    # signed size q (wad units of the underlying, |q| <= 2**96), the index price P of its last
    # settlement (wad, <= 1e36) and the funding it owes since, Phi (USD wad, rounded up; < 0
    # when it receives), so that its value at spot X is q (X - P) - Phi. All zero without one.
    size: int256
    price: int256
    owed: int256


struct Portfolio:
    # Cash balance in USD (wad), signed.
    cash: int256
    # Underlying collateral in units (wad), >= 0.
    underlying: int256
    positions: DynArray[Position, MAX_POSITIONS]
    perp: PerpTerms


struct Market:
    # Oracle spot (wad, > 0) and confidence in [0, 1e18].
    spot: int256
    confidence: int256
    now: uint256
    # The configured reference vol (wad): the floor of every account's sigma_ref (see
    # `reference_vol`).
    ref_vol: int256
    # The VolOracle's limits, packed (contracts/math/smile.vy).
    vol_limits: uint256


struct Mode:
    # Spot-shock multiplier k, vol-shock size v, short-option contingency a, confidence
    # contingency conf, underlying haircut h, perp contingency a_perp. All wads.
    k: int256
    v: int256
    a: int256
    conf: int256
    haircut: int256
    a_perp: int256


struct Grid:
    # Spot points per side n (1..10), margin horizon in seconds, shock clamp [u_min, u_max]
    # (u_max < 1), the vol-shock term structure tau_ref and tau_floor (years, wad) and cap v_max.
    n: uint256
    horizon: uint256
    u_min: int256
    u_max: int256
    tau_ref: int256
    tau_floor: int256
    v_max: int256


@internal
@pure
def spot_shock(mode: Mode, grid: Grid, sigma_ref: int256) -> int256:
    """
    @notice u_M = clamp(k_M * sigma_ref * sqrt(horizon in years), u_min, u_max), a wad.
    @param mode The IM or MM parameters.
    @param grid The shared grid parameters.
    @param sigma_ref The reference ATM vol, a wad.
    @return The largest relative spot move of the grid, a wad.
    """
    # horizon <= 30 days (engine bound): the year fraction is below 1e17 and its root below 3e17;
    # k <= 20e18 and sigma_ref <= 10e18: every product below 2**255.
    h_years: uint256 = unsafe_div(unsafe_mul(grid.horizon, 10**18), YEAR)
    root: int256 = convert(wad.sqrt_wad(h_years), int256)
    u: int256 = unsafe_div(unsafe_mul(unsafe_div(unsafe_mul(mode.k, sigma_ref), WAD), root), WAD)
    return min(max(u, grid.u_min), grid.u_max)


@internal
@pure
def vol_shock(v_mode: int256, grid: Grid, tau: int256) -> int256:
    """
    @notice v_M(tau) = min(v_M * sqrt(tau_ref / max(tau, tau_floor)), v_max), a wad.
    @param v_mode The mode's vol-shock size v_M, a wad.
    @param grid The shared grid parameters (tau_floor > 0).
    @param tau Time to expiry in years, a wad.
    @return The relative vol shock for this expiry, a wad.
    """
    t: int256 = max(tau, grid.tau_floor)
    # tau_ref <= 10e18 and t >= tau_floor >= 1e15: the ratio is below 1e22 (wad), its root
    # below 1e20; v_mode <= 1e18: the product is below 1e38.
    ratio: uint256 = convert(unsafe_div(unsafe_mul(grid.tau_ref, WAD), t), uint256)
    scaled: int256 = unsafe_div(unsafe_mul(v_mode, convert(wad.sqrt_wad(ratio), int256)), WAD)
    return min(scaled, grid.v_max)


@internal
@pure
def reference_vol(portfolio: Portfolio, market: Market) -> int256:
    """
    @notice sigma_ref of the account: max(ref_vol, the ATM vol of every live expiry it holds),
            each ATM vol VolOracle.sigma(e, S, S). Listing or settling an expiry the account
            does not hold never moves its grid.
    @param portfolio The account's portfolio (each live position's expiry word is its expiry's entry).
    @param market The market (ref_vol, vol_limits, now).
    @return sigma_ref, a wad.
    """
    ref: int256 = market.ref_vol
    # The ATM vol is a function of the expiry word alone: positions of one expiry share it, so
    # a run of them (the engine keeps an account's positions in fill order, the chain's series
    # expiry by expiry) is evaluated once.
    last: uint256 = 0
    seen: bool = False
    for p: Position in portfolio.positions:
        if positions.expiry(p.word) > market.now and (not seen or p.expiry_word != last):
            ref = max(ref, smile.sigma(p.expiry_word, market.vol_limits, 0, market.now))
            last = p.expiry_word
            seen = True
    return ref


@internal
@pure
def terms(word: uint256) -> (uint256, int256, bool):
    """
    @notice A position word's expiry, strike and type (contracts/margin/positions.vy).
    @param word The position word (Position.word).
    @return (expiry in unix seconds, strike as a signed wad for the pricing arithmetic, is_call).
    """
    expiry: uint256 = 0
    strike: uint256 = 0
    is_call: bool = False
    expiry, strike, is_call = positions.terms(word >> positions.SIZE_BITS)
    # strike < 2**120: its reinterpretation as int256 is its value.
    return expiry, convert(convert(strike, bytes32), int256), is_call


@internal
@pure
def settlement(p: Position, now: uint256) -> int256:
    """
    @notice The settlement price a position's value uses: its expiry word once expired (0 until the
            expiry is settled), 0 while it is live.
    @param p The position.
    @param now The valuation time, unix seconds.
    @return The settlement price, a wad.
    """
    if positions.expiry(p.word) > now:
        return 0
    # A settlement price is an oracle price (<= 1e36): the conversion is exact.
    return convert(p.expiry_word, int256)


@internal
@pure
def contingency(portfolio: Portfolio, market: Market, mode: Mode) -> int256:
    """
    @notice A_M = a_M * sum_{q<0} |q| * S + a_M^perp * |q_f| * S
            + (1 - c) * conf_M * (sum |q| + |q_f|) * S, rounded up.
    @param portfolio The account's portfolio.
    @param market Spot and confidence.
    @param mode The IM or MM parameters.
    @return The contingency, a wad (>= 0).
    """
    # |q_f| <= 2**96 (PerpBook's bound).
    perp_size: int256 = abs(portfolio.perp.size)
    short: int256 = 0
    gross: int256 = perp_size
    for p: Position in portfolio.positions:
        # |size| <= 2**96 by the engine's bounds: the sums stay below 2**102.
        size: int256 = positions.size(p.word)
        if size < 0:
            short = unsafe_sub(short, size)
            gross = unsafe_sub(gross, size)
        else:
            gross = unsafe_add(gross, size)
    # Notionals: sums (< 2**102) times S (<= 1e36 < 2**120), rounded up, below 2**163; times a
    # parameter or (1 - c) (<= 1e18 < 2**60) below 2**223. Every step rounds up.
    short_notional: int256 = wad.ceil_div(unsafe_mul(short, market.spot), WAD)
    perp_notional: int256 = wad.ceil_div(unsafe_mul(perp_size, market.spot), WAD)
    gross_notional: int256 = wad.ceil_div(unsafe_mul(gross, market.spot), WAD)
    short_term: int256 = wad.ceil_div(unsafe_mul(short_notional, mode.a), WAD)
    perp_term: int256 = wad.ceil_div(unsafe_mul(perp_notional, mode.a_perp), WAD)
    conf_term: int256 = wad.ceil_div(
        unsafe_mul(wad.ceil_div(unsafe_mul(gross_notional, mode.conf), WAD), unsafe_sub(WAD, market.confidence)),
        WAD,
    )
    return unsafe_add(unsafe_add(short_term, perp_term), conf_term)


@internal
@pure
def mtm(portfolio: Portfolio, market: Market) -> int256:
    """
    @notice MtM = C + b * S + sum_p q_p * BS(S, K_p, tau_p, sigma_p) + q_f (S - P_f) - Phi_f,
            rounded for the protocol.
    @param portfolio The account's portfolio.
    @param market Spot, confidence, time.
    @return The mark-to-market value in USD, a wad (signed).
    """
    # b <= 2**100 and S <= 1e36: the product is below 2**220.
    total: int256 = unsafe_add(
        unsafe_add(portfolio.cash, unsafe_div(unsafe_mul(portfolio.underlying, market.spot), WAD)),
        self._perp_value(portfolio.perp, market.spot),
    )
    for p: Position in portfolio.positions:
        expiry: uint256 = 0
        strike: int256 = 0
        is_call: bool = False
        expiry, strike, is_call = self.terms(p.word)
        size: int256 = positions.size(p.word)
        if expiry <= market.now:
            total = unsafe_add(total, self._term(size, self._expired_value(strike, is_call, p.expiry_word, market.spot)))
            continue
        tau: int256 = self._tau(expiry, market.now)
        sqrt_tau: int256 = convert(wad.sqrt_wad(convert(tau, uint256)), int256)
        ln_sk: int256 = black76.log_moneyness(market.spot, strike)
        v: int256 = black76.total_vol(smile.sigma(p.expiry_word, market.vol_limits, ln_sk, market.now), sqrt_tau)
        total = unsafe_add(total, self._term(size, black76.price_from_log(market.spot, strike, ln_sk, v, is_call)))
    return total


@internal
@pure
def health(portfolio: Portfolio, market: Market, mode: Mode, grid: Grid) -> (int256, uint256):
    """
    @notice H_M = min over the scenario grid of V_{j,s}, minus A_M; and the witness index.
    @dev Cost: one ln per spot point, one ln and one smile evaluation per position, two sqrt
         per expiry, one Black-76 price per position and scenario (3 (2n + 1) of them). The
         witness is the lowest index attaining the minimum.
    @param portfolio The account's portfolio.
    @param market Spot, confidence, time and the reference vol.
    @param mode The IM or MM parameters.
    @param grid The shared grid parameters.
    @return (health, witness): health a wad (signed), witness a scenario index.
    """
    points: uint256 = unsafe_add(unsafe_mul(grid.n, 2), 1)
    u: int256 = self.spot_shock(mode, grid, self.reference_vol(portfolio, market))
    spots: int256[MAX_POINTS] = empty(int256[MAX_POINTS])
    logs: int256[MAX_POINTS] = empty(int256[MAX_POINTS])
    values: int256[MAX_SCENARIOS] = empty(int256[MAX_SCENARIOS])
    for j: uint256 in range(MAX_POINTS):
        if j == points:
            break
        spot_j: int256 = self._shocked_spot(market.spot, u, j, grid.n)
        spots[j] = spot_j
        logs[j] = black76.log_moneyness(spot_j, market.spot)
    # Collateral part of every scenario: C + b * S_j * (1 - h), rounded down.
    for j: uint256 in range(MAX_POINTS):
        if j == points:
            break
        base: int256 = self._collateral_value(portfolio, spots[j], mode.haircut)
        values[j] = base
        values[unsafe_add(j, points)] = base
        values[unsafe_add(j, unsafe_mul(2, points))] = base
    cache_expiry: uint256[MAX_POSITIONS] = empty(uint256[MAX_POSITIONS])
    cache_sqrt: int256[MAX_POSITIONS] = empty(int256[MAX_POSITIONS])
    cache_shock: int256[MAX_POSITIONS] = empty(int256[MAX_POSITIONS])
    cached: uint256 = 0
    for p: Position in portfolio.positions:
        expiry: uint256 = 0
        strike: int256 = 0
        is_call: bool = False
        expiry, strike, is_call = self.terms(p.word)
        size: int256 = positions.size(p.word)
        if expiry <= market.now:
            # Expired (tau = 0): intrinsic value, the same in every vol state.
            for j: uint256 in range(MAX_POINTS):
                if j == points:
                    break
                term: int256 = self._term(size, self._expired_value(strike, is_call, p.expiry_word, spots[j]))
                for s: uint256 in range(3):
                    w: uint256 = unsafe_add(unsafe_mul(s, points), j)
                    values[w] = unsafe_add(values[w], term)
            continue
        ln_sk: int256 = black76.log_moneyness(market.spot, strike)
        # sqrt(tau) and the vol shock depend on the expiry only: computed once per expiry.
        slot: uint256 = cached
        for c: uint256 in range(cached, bound=MAX_POSITIONS):
            if cache_expiry[c] == expiry:
                slot = c
                break
        if slot == cached:
            tau: int256 = self._tau(expiry, market.now)
            cache_expiry[slot] = expiry
            cache_sqrt[slot] = convert(wad.sqrt_wad(convert(tau, uint256)), int256)
            cache_shock[slot] = self.vol_shock(mode.v, grid, tau)
            cached = unsafe_add(cached, 1)
        vs: int256[3] = self._state_vols(smile.sigma(p.expiry_word, market.vol_limits, ln_sk, market.now), cache_shock[slot], cache_sqrt[slot])
        v_down: int256 = vs[0]
        v_flat: int256 = vs[1]
        v_up: int256 = vs[2]
        # The hot loop: three Black-76 prices per spot point (down, flat, up vol), unrolled.
        # Each term is size * price / 1e18 rounded down (a short's liability rounds up in
        # magnitude): |size| <= 2**96 and the price <= 2**121, so the product is below 2**217.
        for j: uint256 in range(MAX_POINTS):
            if j == points:
                break
            ln_jk: int256 = unsafe_add(ln_sk, logs[j])
            spot_j: int256 = spots[j]
            # floor(x / 1e18) = (x - (1e18 - 1) [x < 0]) / 1e18 with truncating division.
            product: int256 = unsafe_mul(size, black76.price_from_log(spot_j, strike, ln_jk, v_down, is_call))
            if product < 0:
                product = unsafe_sub(product, WAD - 1)
            values[j] = unsafe_add(values[j], unsafe_div(product, WAD))
            w: uint256 = unsafe_add(j, points)
            product = unsafe_mul(size, black76.price_from_log(spot_j, strike, ln_jk, v_flat, is_call))
            if product < 0:
                product = unsafe_sub(product, WAD - 1)
            values[w] = unsafe_add(values[w], unsafe_div(product, WAD))
            w = unsafe_add(w, points)
            product = unsafe_mul(size, black76.price_from_log(spot_j, strike, ln_jk, v_up, is_call))
            if product < 0:
                product = unsafe_sub(product, WAD - 1)
            values[w] = unsafe_add(values[w], unsafe_div(product, WAD))
    worst: int256 = max_value(int256)
    witness: uint256 = 0
    for w: uint256 in range(MAX_SCENARIOS):
        if w == unsafe_mul(3, points):
            break
        if values[w] < worst:
            worst = values[w]
            witness = w
    return unsafe_sub(worst, self.contingency(portfolio, market, mode)), witness


@internal
@pure
def health_floor(portfolio: Portfolio, market: Market, mode: Mode, grid: Grid) -> int256:
    """
    @notice A lower bound of H_M that needs no vols: C + b S_lo (1 - h) - sum_{q<0} |q| UB
            + min(V_f(S_lo), V_f(S_hi)) - A_M, with S_lo = S (1 - u_max), UB an upper bound
            of the option's price in every scenario: S_hi = S (1 + u_max) (or the settlement
            price if higher) for a call, the strike for a put; V_f(X) = q_f (X - P_f) - Phi_f
            the perp's value.
    @dev Sound term by term against `health`: every scenario spot S_j = S (1 + m_j) has
         |m_j| <= u <= u_max, and S_lo, S_hi use the same rounding as S_j, so
         S_lo <= S_j <= S_hi; the collateral term grows with S_j; a long option's term is
         >= 0 (prices are clamped to >= intrinsic >= 0); Black-76 prices are clamped to <= F
         (call) and <= K (put), an expired call's intrinsic value is below its price (the
         settlement or S_j), the short term floor(q P) only falls as P rises, and the
         perp's value is linear in S_j (so its minimum over [S_lo, S_hi] is at an end), with
         the collateral term's rounding. So health_floor <= H_M, and health_floor >= 0 proves H_M >= 0 without the grid.
    @param portfolio The account's portfolio (smiles are not read).
    @param market Spot and confidence (sigma_ref is not read).
    @param mode The IM or MM parameters.
    @param grid The shared grid parameters (u_max).
    @return The lower bound, a wad (signed).
    """
    spot_hi: int256 = self._shocked_spot(market.spot, grid.u_max, 2, 1)
    spot_lo: int256 = self._shocked_spot(market.spot, grid.u_max, 0, 1)
    # The collateral term at S_lo includes the perp's value there; at S_hi a long perp is worth
    # more, a short one less.
    total: int256 = self._collateral_value(portfolio, spot_lo, mode.haircut)
    if portfolio.perp.size < 0:
        total = unsafe_add(
            total,
            unsafe_sub(self._perp_value(portfolio.perp, spot_hi), self._perp_value(portfolio.perp, spot_lo)),
        )
    for p: Position in portfolio.positions:
        size: int256 = positions.size(p.word)
        if size >= 0:
            continue
        expiry: uint256 = 0
        strike: int256 = 0
        is_call: bool = False
        expiry, strike, is_call = self.terms(p.word)
        bound: int256 = strike
        if is_call:
            bound = max(spot_hi, self.settlement(p, market.now))
        # |size| <= 2**96 and bound <= max(1.9e36, 1e36) < 2**121: see `_term`.
        total = unsafe_add(total, self._term(size, bound))
    return unsafe_sub(total, self.contingency(portfolio, market, mode))


@internal
@pure
def initial_health(portfolio: Portfolio, market: Market, im: Mode, mm: Mode, grid: Grid) -> (int256, uint256, int256):
    """
    @notice H_IM = min(min over IM's scenarios of V - A_IM, H_MM): the initial-margin check
            covers every maintenance scenario, so H_IM <= H_MM holds for every account. Also
            returns H_MM, which it computes on the way.
    @dev The IM witness indexes IM's scenarios as `health` does, and MM's scenario w as
         w + 3 (2n + 1) (MarginEngine.scenario_health reads both). Cost: both grids.
    @param portfolio The account's portfolio.
    @param market Spot, confidence, time, the vol limits and ref_vol.
    @param im The initial-margin parameters.
    @param mm The maintenance parameters.
    @param grid The shared grid parameters.
    @return (H_IM, its witness, H_MM), wads.
    """
    h_im: int256 = 0
    w_im: uint256 = 0
    h_mm: int256 = 0
    w_mm: uint256 = 0
    h_im, w_im = self.health(portfolio, market, im, grid)
    h_mm, w_mm = self.health(portfolio, market, mm, grid)
    if h_mm < h_im:
        return h_mm, unsafe_add(w_mm, unsafe_mul(3, unsafe_add(unsafe_mul(grid.n, 2), 1))), h_mm
    return h_im, w_im, h_mm


@internal
@pure
def meets_initial_margin(portfolio: Portfolio, market: Market, im: Mode, mm: Mode, grid: Grid) -> bool:
    """
    @notice H_IM >= 0: by IM's health floor when it suffices (it bounds MM's health too: IM's
            haircut and contingency are at least MM's and the floor does not depend on the
            grid), else by IM's grid and then MM's.
    @param portfolio The account's portfolio.
    @param market Spot, confidence, time, the vol limits and ref_vol.
    @param im The initial-margin parameters.
    @param mm The maintenance parameters.
    @param grid The shared grid parameters.
    @return True when H_IM >= 0.
    """
    if self.health_floor(portfolio, market, im, grid) >= 0:
        return True
    if self.health(portfolio, market, im, grid)[0] < 0:
        return False
    return self.health(portfolio, market, mm, grid)[0] >= 0


@internal
@pure
def is_healthy(portfolio: Portfolio, market: Market, mode: Mode, grid: Grid) -> bool:
    """
    @notice H_M >= 0: by `health_floor` when the floor is enough, else by the full grid.
    @param portfolio The account's portfolio.
    @param market Spot, confidence, time and the reference vol.
    @param mode The IM or MM parameters.
    @param grid The shared grid parameters.
    @return True when H_M >= 0.
    """
    if self.health_floor(portfolio, market, mode, grid) >= 0:
        return True
    return self.health(portfolio, market, mode, grid)[0] >= 0


@internal
@pure
def scenario_value(portfolio: Portfolio, market: Market, mode: Mode, grid: Grid, w: uint256) -> int256:
    """
    @notice V_{j,s} of one scenario (no contingency): what a witness check evaluates.
    @dev Reverts "risk: bad scenario" unless w < 3 (2n + 1). V_w - A_M < 0 proves H_M < 0.
    @param portfolio The account's portfolio.
    @param market Spot, confidence, time and the reference vol.
    @param mode The IM or MM parameters.
    @param grid The shared grid parameters.
    @param w The scenario index.
    @return The scenario value, a wad (signed).
    """
    points: uint256 = unsafe_add(unsafe_mul(grid.n, 2), 1)
    assert w < unsafe_mul(3, points), "risk: bad scenario"
    s: uint256 = w // points
    j: uint256 = w % points
    spot_j: int256 = self._shocked_spot(market.spot, self.spot_shock(mode, grid, self.reference_vol(portfolio, market)), j, grid.n)
    log_j: int256 = black76.log_moneyness(spot_j, market.spot)
    total: int256 = self._collateral_value(portfolio, spot_j, mode.haircut)
    # The same per-expiry cache of sqrt(tau) and the vol shock as `health` (same formulas, so
    # the value is the grid's to the wei). It is written out in both: a shared internal
    # function would copy the portfolio in memory, which measured ~4k gas more per call.
    cache_expiry: uint256[MAX_POSITIONS] = empty(uint256[MAX_POSITIONS])
    cache_sqrt: int256[MAX_POSITIONS] = empty(int256[MAX_POSITIONS])
    cache_shock: int256[MAX_POSITIONS] = empty(int256[MAX_POSITIONS])
    cached: uint256 = 0
    for p: Position in portfolio.positions:
        expiry: uint256 = 0
        strike: int256 = 0
        is_call: bool = False
        expiry, strike, is_call = self.terms(p.word)
        size: int256 = positions.size(p.word)
        if expiry <= market.now:
            # Expired (tau = 0): intrinsic value.
            total = unsafe_add(total, self._term(size, self._expired_value(strike, is_call, p.expiry_word, spot_j)))
            continue
        slot: uint256 = cached
        for c: uint256 in range(cached, bound=MAX_POSITIONS):
            if cache_expiry[c] == expiry:
                slot = c
                break
        if slot == cached:
            tau: int256 = self._tau(expiry, market.now)
            cache_expiry[slot] = expiry
            cache_sqrt[slot] = convert(wad.sqrt_wad(convert(tau, uint256)), int256)
            cache_shock[slot] = self.vol_shock(mode.v, grid, tau)
            cached = unsafe_add(cached, 1)
        ln_sk: int256 = black76.log_moneyness(market.spot, strike)
        v: int256 = self._state_vol(smile.sigma(p.expiry_word, market.vol_limits, ln_sk, market.now), cache_shock[slot], cache_sqrt[slot], s)
        ln_jk: int256 = unsafe_add(ln_sk, log_j)
        total = unsafe_add(total, self._term(size, black76.price_from_log(spot_j, strike, ln_jk, v, is_call)))
    return total


@internal
@pure
def price_band(p: Position, market: Market, mm: Mode, grid: Grid) -> (int256, int256):
    """
    @notice The fair-price band of a live series: the unit Black-76 prices at the current spot
            in MM's down and up vol states, sigma / (1 + v_MM(tau)) and sigma (1 + v_MM(tau)).
            A fill held to the band moves value between its two sides by at most the model's
            own vol uncertainty.
    @param p The series as a position (its word; the size is not read) with its expiry's packed
             vol entry as the expiry word.
    @param market Spot, time and the vol limits.
    @param mm The maintenance parameters (v).
    @param grid The shared grid parameters (the vol-shock term structure).
    @return (lowest, highest) unit price, wads.
    """
    expiry: uint256 = 0
    strike: int256 = 0
    is_call: bool = False
    expiry, strike, is_call = self.terms(p.word)
    tau: int256 = self._tau(expiry, market.now)
    sqrt_tau: int256 = convert(wad.sqrt_wad(convert(tau, uint256)), int256)
    shock: int256 = self.vol_shock(mm.v, grid, tau)
    ln_sk: int256 = black76.log_moneyness(market.spot, strike)
    sigma: int256 = smile.sigma(p.expiry_word, market.vol_limits, ln_sk, market.now)
    low: int256 = black76.price_from_log(market.spot, strike, ln_sk, black76.total_vol(self._sigma_down(sigma, shock), sqrt_tau), is_call)
    high: int256 = black76.price_from_log(market.spot, strike, ln_sk, black76.total_vol(self._sigma_up(sigma, shock), sqrt_tau), is_call)
    return low, high


@internal
@pure
def _shocked_spot(spot: int256, u: int256, j: uint256, n: uint256) -> int256:
    """
    @dev S_j = S (1 + m_j), m_j = (j - n) u / n, rounded down; u < 1 keeps it positive.
    """
    # |j - n| <= 10, u < 1e18, S <= 1e36: products below 2**125.
    m: int256 = unsafe_div(unsafe_mul(unsafe_sub(convert(j, int256), convert(n, int256)), u), convert(n, int256))
    return unsafe_div(unsafe_mul(spot, unsafe_add(WAD, m)), WAD)


@internal
@pure
def _collateral_value(portfolio: Portfolio, spot_j: int256, haircut: int256) -> int256:
    """
    @dev C + b * S_j * (1 - h) + q_f (S_j - P_f) - Phi_f: the part of a scenario's value that
         needs no option price, each term rounded down.
    """
    # b <= 2**100, S_j <= 2**121, (1 - h) <= 1e18: below 2**255 after the first division.
    return unsafe_add(
        unsafe_add(
            portfolio.cash,
            unsafe_div(unsafe_mul(unsafe_div(unsafe_mul(portfolio.underlying, spot_j), WAD), unsafe_sub(WAD, haircut)), WAD),
        ),
        self._perp_value(portfolio.perp, spot_j),
    )


@internal
@pure
def _perp_value(perp: PerpTerms, spot_j: int256) -> int256:
    """
    @dev q_f (S_j - P_f) - Phi_f, the product rounded down (a gain rounds down, a loss up in
         magnitude); 0 without a perp.
    """
    # |q| <= 2**96 and |S_j - P| < 2**122 (both <= 1.9e36): the product is below 2**218;
    # |Phi| is below 2**240 (contracts/margin/perp.vy), so the sum does not wrap either.
    return unsafe_sub(self._term(perp.size, unsafe_sub(spot_j, perp.price)), perp.owed)


@internal
@pure
def _state_vols(sigma: int256, shock: int256, sqrt_tau: int256) -> int256[3]:
    """
    @dev Total vols v = sigma' sqrt(tau) of the down, flat and up vol states.
    """
    return [
        black76.total_vol(self._sigma_down(sigma, shock), sqrt_tau),
        black76.total_vol(sigma, sqrt_tau),
        black76.total_vol(self._sigma_up(sigma, shock), sqrt_tau),
    ]


@internal
@pure
def _state_vol(sigma: int256, shock: int256, sqrt_tau: int256, s: uint256) -> int256:
    """
    @dev Total vol v = sigma' sqrt(tau) of vol state s (0 down, 1 flat, 2 up): what
         `_state_vols` gives for all three, computed for the witness check's one state.
    """
    state_sigma: int256 = sigma
    if s == 0:
        state_sigma = self._sigma_down(sigma, shock)
    elif s == 2:
        state_sigma = self._sigma_up(sigma, shock)
    return black76.total_vol(state_sigma, sqrt_tau)


@internal
@pure
def _sigma_down(sigma: int256, shock: int256) -> int256:
    """
    @dev The down state's vol sigma / (1 + shock), rounded down.
    """
    # sigma < 2**64 (a smile's answer): the product is below 2**124; 1 + shock >= 1e18.
    return unsafe_div(unsafe_mul(sigma, WAD), unsafe_add(WAD, shock))


@internal
@pure
def _sigma_up(sigma: int256, shock: int256) -> int256:
    """
    @dev The up state's vol sigma (1 + shock), rounded down.
    """
    # sigma < 2**64 and 1 + shock <= 2e18: the product is below 2**125.
    return unsafe_div(unsafe_mul(sigma, unsafe_add(WAD, shock)), WAD)


@internal
@pure
def _expired_value(strike: int256, is_call: bool, settlement: uint256, spot_j: int256) -> int256:
    """
    @dev Intrinsic value at the settlement price once recorded, else at the (shocked) spot.
    """
    price: int256 = spot_j
    if settlement != 0:
        # A settlement price is an oracle price (<= 1e36): the conversion is exact.
        price = convert(settlement, int256)
    if is_call:
        return max(unsafe_sub(price, strike), 0)
    return max(unsafe_sub(strike, price), 0)


@internal
@pure
def _term(size: int256, unit_value: int256) -> int256:
    """
    @dev size * value / 1e18, rounded down (a short's liability rounds up in magnitude).
    """
    # |size| <= 2**96 and value <= 2**120: the product is below 2**216.
    return wad.floor_wad(unsafe_mul(size, unit_value))



@internal
@pure
def _tau(expiry: uint256, now: uint256) -> int256:
    """
    @dev Years to expiry as a wad, 0 at or after expiry.
    """
    if expiry <= now:
        return 0
    # expiry - now < 2**64 seconds: the product is below 2**124.
    return convert(unsafe_div(unsafe_mul(unsafe_sub(expiry, now), 10**18), YEAR), int256)
