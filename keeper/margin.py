"""Off-chain mirror of the Kappa margin model (DESIGN.md "Margin model", docs/margin_model.md).

float64 numpy, vectorized across many accounts, pure (no chain I/O): plain-data inputs a chain
mirror fills from events and views, and the same numbers as MarginEngine.vy within the agreement
rule of docs/margin_model.md (1e-9 relative + 1e-6 USD absolute).

The model, for mode M in {IM, MM} (docs/margin_model.md is normative; this restates it):

    tau_p     = max(expiry_p - now, 0) / 31_536_000                      (years)
    sigma_p   = clamp(atm_e + skew_e * ln(K_p / S), vol_min_e, vol_max_e)  (at the current S)
    sigma_ref = max(ref_vol, clamp(atm_e, vol_min_e, vol_max_e) over the live expiries e the
                account holds)                                          (per account)
    u_M       = clamp(k_M * sigma_ref * sqrt(horizon_s / 31_536_000), u_min, u_max)
    m_j       = j * u_M / n, S_j = S * (1 + m_j)                           (j = -n .. n)
    v_M(tau)  = min(v_M * sqrt(tau_ref / max(tau, tau_floor)), v_max)
    sigma'    = sigma / (1 + v_M(tau)) down, sigma flat, sigma * (1 + v_M(tau)) up
    V_f(x)    = q_f * (x - P_f) - Phi_f                                 (the perp at spot x)
    V_{j,s}   = C + b * S_j * (1 - h_M) + sum_p q_p * BS(S_j, K_p, tau_p, sigma'_{p,s}) + V_f(S_j)
    MtM       = C + b * S + sum_p q_p * BS(S, K_p, tau_p, sigma_p) + V_f(S)
    A_M       = a_M * sum_{q_p < 0} |q_p| * S + a_perp_M * |q_f| * S
                + (1 - c) * conf_M * (sum_p |q_p| + |q_f|) * S
    H_M       = min_{j,s} V_{j,s} - A_M;  liquidatable iff H_MM < 0
    H_IM      = min(H_IM as above, H_MM)   (the IM check covers MM's scenarios: H_IM <= H_MM)

A position at or past expiry (expiry <= now, tau = 0) is worth its intrinsic value at the
recorded settlement price of its expiry if there is one (constant across scenarios), else at the
(shocked) spot S_j (S for MtM).

The perp (PerpBook.margin_terms, as the engine hands it to the calculator): size q_f (signed,
long > 0), the index price P_f of its last settlement and the funding Phi_f owed since (< 0 when
it receives). Its value is linear in the spot and the same in every vol state; an account
without a perp has q_f = P_f = Phi_f = 0.

Scenario index (the witness): w = s * (2n + 1) + (j + n), s = 0 down, 1 flat, 2 up; w runs over
0 .. 3(2n + 1) - 1 and w = n + (2n + 1) is the unshocked flat scenario. The witness of an
account is the lowest index of the minimum of V_{j,s} (np.argmin's tie rule). The IM witness is
MM's witness plus 3(2n + 1) when H_MM is the lower of the two (MarginEngine.scenario_health).

Decisions where docs/margin_model.md leaves room (each applies to the contract as well):
- A surface entry is "absent" when its atm is NaN. A live position on an expiry without an entry
  raises ValueError (VolOracle.sigma reverts "vol: no entry"); an expired one needs no vol.
- Stale vol entries: VolOracle answers min(sigma * (1 + stale_markup), vol_max) for an entry
  older than its heartbeat. `Market.stale_markup` (per expiry, 0 = fresh) reproduces that, and
  it applies to each expiry's term of sigma_ref too (the oracle's answer at strike = forward =
  S, where the skew term vanishes: clamp(atm) when fresh).
- The settlement price of an expiry is used only for positions with tau = 0 (it cannot exist
  earlier on chain); NaN means "not recorded".
- The contingency A_M counts every held position, expired ones included (the rules make no
  exception; on chain a position is held until it is settled into cash).

Speed. Option series are shared: the accounts' positions reference a few hundred listed series
(expiry, strike, is_call). `Portfolios.book` (built once per set of portfolios, cached) maps
every occupied slot to a series and keeps the sizes as a sparse account x series matrix Q
(CSR, slot order). A price update then prices each series once per scenario with
keeper.black76.black76 (a U x 3(2n+1) table per mode) and aggregates V = Q @ table: the work is
O(U * W) Black-76 prices plus O(A * P * W) multiply-adds, and every number is the exact model
(no approximation anywhere in `evaluate`). With every position in its own series (U = A * P)
the pricing dominates; bench/margin_mirror.py reports that case too.

The liquidatable screen (`liquidatable`, `mm_health_lower_bound`) is documented on
`mm_health_lower_bound`: a provable lower bound on H_MM from 5 prices per series instead of 21,
then the exact model for the accounts the bound cannot clear, so no account is ever missed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from keeper.black76 import black76

__all__ = [
    "DOWN",
    "FLAT",
    "SECONDS_PER_YEAR",
    "UP",
    "AccountGreeks",
    "MarginParams",
    "MarginResult",
    "Market",
    "ModeParams",
    "Portfolios",
    "ScenarioGrid",
    "account_greeks",
    "contingency",
    "evaluate",
    "liquidatable",
    "mm_health_lower_bound",
    "scenario_grid",
    "scenario_index",
    "scenario_of",
    "scenario_values",
    "sigma_ref",
    "smile",
    "vol_shock",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

SECONDS_PER_YEAR = 31_536_000
DOWN, FLAT, UP = 0, 1, 2
VOL_STATES = 3
MAX_N = 10
# The engine's hard bounds on the risk parameters (contracts/margin/params.vy, MAX_K and the
# rest; MarginEngine.set_risk_params and RiskCalculator.check_params apply them), in wads as the
# contract states them, inclusive; every
# IM value must also be at least its MM counterpart. MarginParams accepts exactly what the
# engine accepts: `from_wads` checks the wads themselves (exact to the wei), the constructor
# the floats against the same bounds.
WAD = 10**18
MODE_BOUNDS = {
    "k": (WAD, 20 * WAD),
    "v": (0, WAD),
    "a": (0, WAD // 5),
    "conf": (0, WAD),
    "haircut": (0, WAD // 2),
    "a_perp": (0, WAD // 5),
}
A_PERP_STEP = 10**14  # one basis point, as a wad
N_BOUNDS = (1, MAX_N)
HORIZON_BOUNDS = (3600, 30 * 86_400)  # seconds
U_MAX_BOUND = 9 * WAD // 10  # 0 <= u_min <= u_max <= 0.9
TAU_REF_BOUND = WAD  # 0 < tau_floor <= tau_ref <= 1 (years)
V_MAX_BOUNDS = (0, WAD)
REF_VOL_BOUNDS = (10**16, 10 * WAD)


def _bounds_error(
    im: Sequence[float], mm: Sequence[float], grid: Sequence[float], ref_vol: float, one: float
) -> str | None:
    """Why (im, mm, grid, ref_vol) lies outside the engine's bounds, or None. `one` is 1 in the
    values' unit: WAD for wads (compared exactly), 1.0 for floats (bounds divided by WAD)."""

    def b(x: int) -> float:
        return x if one == WAD else x / WAD

    for mode, name in ((mm, "MM"), (im, "IM")):
        for value, (field, (low, high)) in zip(mode, MODE_BOUNDS.items(), strict=True):
            if not b(low) <= value <= b(high):
                return f"{name} {field} must lie in [{low / WAD:g}, {high / WAD:g}]"
    # The engine stores a_perp in whole basis points (contracts/margin/params.vy).
    if one == WAD and any(int(m[5]) % A_PERP_STEP for m in (mm, im)):
        return "a_perp must be a whole number of basis points"
    if not all(i >= m for i, m in zip(im, mm, strict=True)):
        return "every IM parameter must be at least its MM counterpart"
    n, horizon, u_min, u_max, tau_ref, tau_floor, v_max = grid
    if not (float(n).is_integer() and N_BOUNDS[0] <= n <= N_BOUNDS[1]):
        return f"n must be an integer in {N_BOUNDS[0]}..{N_BOUNDS[1]}"
    if not HORIZON_BOUNDS[0] <= horizon <= HORIZON_BOUNDS[1]:
        return f"horizon must lie in [{HORIZON_BOUNDS[0]}, {HORIZON_BOUNDS[1]}] seconds"
    if not 0 <= u_min <= u_max <= b(U_MAX_BOUND):
        return f"need 0 <= u_min <= u_max <= {U_MAX_BOUND / WAD:g}"
    if not 0 < tau_floor <= tau_ref <= b(TAU_REF_BOUND):
        return f"need 0 < tau_floor <= tau_ref <= {TAU_REF_BOUND / WAD:g}"
    if not b(V_MAX_BOUNDS[0]) <= v_max <= b(V_MAX_BOUNDS[1]):
        return f"v_max must lie in [{V_MAX_BOUNDS[0] / WAD:g}, {V_MAX_BOUNDS[1] / WAD:g}]"
    if not b(REF_VOL_BOUNDS[0]) <= ref_vol <= b(REF_VOL_BOUNDS[1]):
        return f"ref_vol must lie in [{REF_VOL_BOUNDS[0] / WAD:g}, {REF_VOL_BOUNDS[1] / WAD:g}]"
    return None


# Slack of the screen, relative to a bound on every magnitude in the computation (see
# mm_health_lower_bound): float64 rounding is ~1e-14 of that scale, so 1e-9 is safe by 5 orders.
SCREEN_REL_TOL = 1e-9


# ---------------------------------------------------------------------------------------------
# Inputs


def _frozen_array(value: ArrayLike, dtype: type, name: str, ndim: int) -> NDArray:
    array = np.array(value, dtype=dtype, copy=True)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {array.shape}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class ModeParams:
    """Parameters of one margin mode (IM or MM).

    k: spot-shock multiplier of sigma_ref * sqrt(horizon); v: relative vol shock at tau_ref;
    a: short-option contingency per unit of spot; conf: confidence contingency multiplier;
    haircut: haircut of the underlying collateral in [0, 1]; a_perp: the perp's contingency
    per unit of spot.
    """

    k: float
    v: float
    a: float
    conf: float
    haircut: float
    a_perp: float

    def __post_init__(self) -> None:
        for name, (low, high) in MODE_BOUNDS.items():
            if not low / WAD <= getattr(self, name) <= high / WAD:
                raise ValueError(f"{name} must lie in [{low / WAD:g}, {high / WAD:g}]")

    def values(self) -> tuple[float, float, float, float, float, float]:
        """(k, v, a, conf, haircut, a_perp), the order of risk.Mode."""
        return self.k, self.v, self.a, self.conf, self.haircut, self.a_perp

    @classmethod
    def from_wads(cls, k: int, v: int, a: int, conf: int, haircut: int, a_perp: int) -> ModeParams:
        """The mode as the engine stores it (risk.Mode: six wads, in this order)."""
        return cls(*(int(x) / WAD for x in (k, v, a, conf, haircut, a_perp)))

    def at_least_as_strict_as(self, other: ModeParams) -> bool:
        """Every parameter >= other's (the contract enforces this for IM against MM)."""
        return all(getattr(self, f) >= getattr(other, f) for f in MODE_BOUNDS)


@dataclass(frozen=True)
class MarginParams:
    """The risk parameters: one ModeParams per mode plus the shared grid parameters.

    n: spot points per side; horizon_s: margin horizon in seconds; u_min <= u_max: bounds of
    the spot shock; tau_ref, tau_floor (years) and v_max shape the vol shock v_M(tau);
    ref_vol: the floor of every account's sigma_ref. Every value within the engine's hard
    bounds (MODE_BOUNDS and the grid bounds above; IM at least MM, field by field), else
    ValueError: the mirror models exactly the parameters the engine can hold.
    """

    im: ModeParams
    mm: ModeParams
    n: int
    horizon_s: float
    u_min: float
    u_max: float
    tau_ref: float
    tau_floor: float
    v_max: float
    ref_vol: float

    def __post_init__(self) -> None:
        if not isinstance(self.n, int | np.integer):
            raise ValueError("n must be an integer")
        grid = (
            self.n,
            self.horizon_s,
            self.u_min,
            self.u_max,
            self.tau_ref,
            self.tau_floor,
            self.v_max,
        )
        error = _bounds_error(self.im.values(), self.mm.values(), grid, self.ref_vol, 1.0)
        if error:
            raise ValueError(error)

    @classmethod
    def from_wads(
        cls,
        im: Sequence[int],
        mm: Sequence[int],
        grid: Sequence[int],
        ref_vol: int,
    ) -> MarginParams:
        """The parameters as the engine holds them (MarginEngine.risk_params, the deployment
        configs): im and mm as risk.Mode (k, v, a, conf, haircut: wads), grid as risk.Grid
        (n, horizon in seconds, u_min, u_max, tau_ref, tau_floor, v_max: wads), ref_vol a wad.
        This is the one place wad-encoded parameters become floats; the bounds are checked
        on the wads, exactly as the engine checks them."""
        ims, mms, grids = [int(x) for x in im], [int(x) for x in mm], [int(x) for x in grid]
        error = _bounds_error(ims, mms, grids, int(ref_vol), WAD)
        if error:
            raise ValueError(error)
        n, horizon, u_min, u_max, tau_ref, tau_floor, v_max = grids
        return cls(
            im=ModeParams.from_wads(*ims),
            mm=ModeParams.from_wads(*mms),
            n=n,
            horizon_s=horizon,
            u_min=u_min / WAD,
            u_max=u_max / WAD,
            tau_ref=tau_ref / WAD,
            tau_floor=tau_floor / WAD,
            v_max=v_max / WAD,
            ref_vol=int(ref_vol) / WAD,
        )

    def mode(self, is_im: bool) -> ModeParams:
        return self.im if is_im else self.mm

    @property
    def points(self) -> int:
        """Spot points 2n + 1."""
        return 2 * int(self.n) + 1

    @property
    def n_scenarios(self) -> int:
        """3 (2n + 1) scenarios per mode."""
        return VOL_STATES * self.points

    @property
    def flat_index(self) -> int:
        """The unshocked flat scenario, n + (2n + 1)."""
        return scenario_index(0, FLAT, self.n)


@dataclass(frozen=True)
class Market:
    """Market state: spot and confidence (OracleAggregator), time, and per-expiry data.

    Per expiry (arrays of length E, expiries strictly increasing, int seconds): atm and skew of
    the vol surface (atm NaN = no entry), the recorded settlement price (NaN = none), vol_min,
    vol_max (arrays or scalars) and stale_markup (VolOracle's markup for a stale entry; 0 or None
    = fresh).
    """

    spot: float
    confidence: float
    now: int
    expiries: IntArray
    atm: FloatArray
    skew: FloatArray
    settlement: FloatArray
    vol_min: FloatArray
    vol_max: FloatArray
    stale_markup: FloatArray | None = None

    def __post_init__(self) -> None:
        expiries = _frozen_array(self.expiries, np.int64, "expiries", 1)
        size = expiries.size
        object.__setattr__(self, "expiries", expiries)
        for name in ("atm", "skew", "settlement", "vol_min", "vol_max", "stale_markup"):
            raw = getattr(self, name)
            value = np.zeros(size) if raw is None else np.broadcast_to(np.asarray(raw, float), size)
            object.__setattr__(self, name, _frozen_array(value, np.float64, name, 1))
        if np.any(np.diff(expiries) <= 0):
            raise ValueError("expiries must be strictly increasing")
        if not (np.isfinite(self.spot) and self.spot > 0):
            raise ValueError("spot must be finite and > 0")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError("confidence must lie in [0, 1]")
        if np.any(~(self.vol_min > 0)) or np.any(~(self.vol_max >= self.vol_min)):
            raise ValueError("need 0 < vol_min <= vol_max")
        if np.any(~(self.stale_markup >= 0)):
            raise ValueError("stale_markup must be >= 0")
        settled = ~np.isnan(self.settlement)
        if np.any(~(self.settlement[settled] > 0) | ~np.isfinite(self.settlement[settled])):
            raise ValueError("a recorded settlement price must be finite and > 0")
        object.__setattr__(self, "now", int(self.now))
        object.__setattr__(self, "spot", float(self.spot))
        object.__setattr__(self, "confidence", float(self.confidence))


class _Perp(NamedTuple):
    """The perps of some accounts (one entry each): size q_f, price P_f, owed Phi_f."""

    size: FloatArray
    price: FloatArray
    owed: FloatArray

    def take(self, rows: IntArray) -> _Perp:
        return _Perp(self.size[rows], self.price[rows], self.owed[rows])

    def value(self, spots: FloatArray) -> FloatArray:
        """V_f(x) = q_f (x - P_f) - Phi_f at each account's spots, [rows, k] ([rows] spots
        for one spot per account): linear in x, the same in every vol state."""
        if spots.ndim == 1:
            return self.size * (spots - self.price) - self.owed
        return self.size[:, None] * (spots - self.price[:, None]) - self.owed[:, None]


class _Book(NamedTuple):
    """Portfolio-only index (no market data): the distinct series and the sparse size matrix."""

    strike: FloatArray  # [U]
    expiry: IntArray  # [U]
    is_call: BoolArray  # [U]
    sizes: sparse.csr_matrix  # [A, U]: q of every occupied slot, in slot order
    signed: sparse.csr_matrix  # [A, 2U]: the same, column 2u for q > 0 and 2u + 1 for q < 0
    gross: FloatArray  # [A]: sum_p |q_p|
    short: FloatArray  # [A]: sum_{q_p < 0} |q_p|


@dataclass(frozen=True)
class Portfolios:
    """Accounts as arrays: cash [A] (signed, with interest accrued to the market's `now`:
    keeper.interest.cash_values), underlying [A] (>= 0), positions padded to [A, P]: strike,
    expiry (int seconds), is_call, size (signed, long > 0; 0 = empty slot), and the perp [A]
    as PerpBook.margin_terms gives it at the market's `now`: perp_size q_f (signed, long > 0),
    perp_price P_f (its last settlement's index price, >= 0) and perp_owed Phi_f (funding owed
    since, signed: < 0 receives). The perp arrays may be omitted (left empty): no account then
    holds a perp, all three are 0.

    The arrays are copied and made read-only, so the cached `book` stays valid: build a new
    Portfolios when accounts change.
    """

    cash: FloatArray
    underlying: FloatArray
    strike: FloatArray
    expiry: IntArray
    is_call: BoolArray
    size: FloatArray
    perp_size: FloatArray = dataclasses.field(default_factory=lambda: np.zeros(0))
    perp_price: FloatArray = dataclasses.field(default_factory=lambda: np.zeros(0))
    perp_owed: FloatArray = dataclasses.field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        cash = _frozen_array(self.cash, np.float64, "cash", 1)
        object.__setattr__(self, "cash", cash)
        object.__setattr__(self, "underlying", _frozen_array(self.underlying, np.float64, "b", 1))
        for name in ("perp_size", "perp_price", "perp_owed"):
            raw = np.asarray(getattr(self, name), dtype=np.float64)
            value = np.zeros(cash.size) if raw.size == 0 else raw
            array = _frozen_array(value, np.float64, name, 1)
            if array.shape != cash.shape:
                raise ValueError(f"{name} must have one entry per account")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{name} must be finite")
            object.__setattr__(self, name, array)
        if np.any(self.perp_price < 0):
            raise ValueError("perp_price must be >= 0")
        for name, dtype in (
            ("strike", np.float64),
            ("expiry", np.int64),
            ("is_call", np.bool_),
            ("size", np.float64),
        ):
            object.__setattr__(self, name, _frozen_array(getattr(self, name), dtype, name, 2))
        shape = self.size.shape
        if self.underlying.shape != cash.shape or shape[0] != cash.size:
            raise ValueError("cash, underlying and the position arrays disagree on accounts")
        if any(getattr(self, f).shape != shape for f in ("strike", "expiry", "is_call")):
            raise ValueError("strike, expiry, is_call and size must have the same shape")
        if not (np.all(np.isfinite(cash)) and np.all(np.isfinite(self.size))):
            raise ValueError("cash and sizes must be finite")
        if np.any(~(self.underlying >= 0)) or np.any(~np.isfinite(self.underlying)):
            raise ValueError("underlying balances must be finite and >= 0")
        held = self.size != 0
        strikes = self.strike[held]
        if np.any(~(strikes > 0)) or np.any(~np.isfinite(strikes)):
            raise ValueError("a held position needs a finite strike > 0")

    @property
    def n_accounts(self) -> int:
        return int(self.cash.size)

    def take(self, accounts: ArrayLike) -> Portfolios:
        """The sub-book of the given account indices (in that order)."""
        idx = np.asarray(accounts, dtype=np.int64).reshape(-1)
        return Portfolios(
            self.cash[idx],
            self.underlying[idx],
            self.strike[idx],
            self.expiry[idx],
            self.is_call[idx],
            self.size[idx],
            self.perp_size[idx],
            self.perp_price[idx],
            self.perp_owed[idx],
        )

    @property
    def perp(self) -> _Perp:
        """The perp's terms of every account, (q_f, P_f, Phi_f)."""
        return _Perp(self.perp_size, self.perp_price, self.perp_owed)

    @cached_property
    def book(self) -> _Book:
        return _build_book(self)


def _build_book(p: Portfolios) -> _Book:
    held = p.size != 0  # [A, P]
    q = p.size[held]  # row-major: account by account, slots in order
    # Factorize expiry and strike separately (1-D sorts), then the combined integer key.
    expiries, e = np.unique(p.expiry[held], return_inverse=True)
    strikes, k = np.unique(p.strike[held], return_inverse=True)
    key = (e.reshape(-1) * strikes.size + k.reshape(-1)) * 2 + p.is_call[held]
    unique, series = np.unique(key, return_inverse=True)
    series = series.reshape(-1).astype(np.int64)
    n_series = unique.size
    n_accounts = p.n_accounts
    indptr = np.zeros(n_accounts + 1, dtype=np.int64)
    np.cumsum(held.sum(axis=1), out=indptr[1:])
    sizes = sparse.csr_matrix((q, series, indptr), shape=(n_accounts, n_series))
    signed_cols = 2 * series + (q < 0)
    signed = sparse.csr_matrix((q, signed_cols, indptr), shape=(n_accounts, 2 * n_series))
    absq = np.abs(p.size)
    pair, is_call = np.divmod(unique, 2)
    e_of, k_of = np.divmod(pair, max(strikes.size, 1))
    return _Book(
        strike=strikes[k_of],
        expiry=expiries[e_of],
        is_call=is_call.astype(bool),
        sizes=sizes,
        signed=signed,
        gross=absq.sum(axis=1),
        short=np.where(p.size < 0, absq, 0.0).sum(axis=1),
    )


# ---------------------------------------------------------------------------------------------
# Scenario grid


class ScenarioGrid(NamedTuple):
    """The spot grid of one mode: sigma_ref, u_M, the moves m_j and the spots S_j (j = -n..n)."""

    sigma_ref: float
    u: float
    moves: FloatArray
    spots: FloatArray


def scenario_index(j: int, s: int, n: int) -> int:
    """w = s (2n + 1) + (j + n) for spot point j in -n..n and vol state s (0 down, 1 flat, 2 up)."""
    if not (-n <= j <= n and s in (DOWN, FLAT, UP)):
        raise ValueError("need -n <= j <= n and s in {0, 1, 2}")
    return s * (2 * n + 1) + (j + n)


def scenario_of(w: int, n: int) -> tuple[int, int]:
    """The (j, s) of scenario index w (the inverse of scenario_index)."""
    if not 0 <= w < VOL_STATES * (2 * n + 1):
        raise ValueError("scenario index out of range")
    s, offset = divmod(int(w), 2 * n + 1)
    return offset - n, s


def sigma_ref(portfolios: Portfolios, market: Market, params: MarginParams) -> FloatArray:
    """Per account: max(ref_vol, clamp(atm_e) (stale markup applied) over the live expiries e
    the account holds). Listing or settling an expiry an account does not hold leaves it."""
    book = portfolios.book
    return _account_refs(book, _series_state(book, market), params)


def _account_refs(book: _Book, state: _SeriesState, params: MarginParams) -> FloatArray:
    indptr = book.sizes.indptr
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    refs = np.full(indptr.size - 1, float(params.ref_vol))
    np.maximum.at(refs, rows, state.atm_ref[book.sizes.indices])
    return refs


def scenario_grid(market: Market, params: MarginParams, is_im: bool, ref: float) -> ScenarioGrid:
    """u_M = clamp(k_M sigma_ref sqrt(horizon), u_min, u_max), m_j and S_j for sigma_ref `ref`."""
    horizon_years = params.horizon_s / SECONDS_PER_YEAR
    raw = params.mode(is_im).k * ref * np.sqrt(horizon_years)
    u = min(max(float(raw), params.u_min), params.u_max)
    j = np.arange(-params.n, params.n + 1, dtype=np.float64)
    moves = j * u / params.n
    return ScenarioGrid(ref, u, moves, market.spot * (1.0 + moves))


def vol_shock(tau: ArrayLike, v: float, params: MarginParams) -> FloatArray:
    """v_M(tau) = min(v_M sqrt(tau_ref / max(tau, tau_floor)), v_max)."""
    t = np.maximum(np.asarray(tau, dtype=np.float64), params.tau_floor)
    return np.minimum(v * np.sqrt(params.tau_ref / t), params.v_max)


def smile(
    atm: ArrayLike,
    skew: ArrayLike,
    strike: ArrayLike,
    spot: ArrayLike,
    vol_min: ArrayLike,
    vol_max: ArrayLike,
    stale_markup: ArrayLike = 0.0,
) -> FloatArray:
    """The vol of a strike, as VolOracle.sigma answers it (contracts/math/smile.vy):
    clamp(atm + skew ln(K / S), vol_min, vol_max), and for a stale entry (stale_markup > 0)
    min(that (1 + stale_markup), vol_max). At strike == spot the skew term vanishes: the
    entry's ATM vol, clamped (and marked up when stale). Broadcasts over its arguments."""
    raw = np.asarray(atm, np.float64) + np.asarray(skew, np.float64) * np.log(
        np.asarray(strike, np.float64) / np.asarray(spot, np.float64)
    )
    vol = np.minimum(np.maximum(raw, vol_min), vol_max)
    markup = np.asarray(stale_markup, np.float64)
    return np.where(markup > 0, np.minimum(vol * (1.0 + markup), vol_max), vol)


# ---------------------------------------------------------------------------------------------
# Per-series market state


class _SeriesState(NamedTuple):
    tau: FloatArray  # [U] years, 0 at or past expiry
    sigma: FloatArray  # [U] surface vol at the current spot (1.0 placeholder when expired)
    atm_ref: FloatArray  # [U] the expiry's term of sigma_ref: clamp(atm), marked up when stale
    # (0 when expired)
    settled: BoolArray  # [U] expired with a recorded settlement price
    settlement: FloatArray  # [U] that price (NaN otherwise)


def _series_state(book: _Book, market: Market) -> _SeriesState:
    e = np.searchsorted(market.expiries, book.expiry)
    e = np.minimum(e, max(market.expiries.size - 1, 0))
    if book.expiry.size and (
        market.expiries.size == 0 or np.any(market.expiries[e] != book.expiry)
    ):
        raise ValueError("a position's expiry is not listed in market.expiries")
    remaining = np.maximum(book.expiry - market.now, 0)
    tau = remaining / SECONDS_PER_YEAR
    live = remaining > 0
    atm = market.atm[e]
    if np.any(live & np.isnan(atm)):
        raise ValueError("vol: no entry for a live position's expiry")
    limits = (market.vol_min[e], market.vol_max[e], market.stale_markup[e])
    sigma = np.where(live, smile(atm, market.skew[e], book.strike, market.spot, *limits), 1.0)
    # sigma_ref's term: the oracle's answer at strike = spot, where the skew term vanishes.
    atm_ref = np.where(live, smile(atm, market.skew[e], market.spot, market.spot, *limits), 0.0)
    settlement = np.where(live, np.nan, market.settlement[e])
    return _SeriesState(tau, sigma, atm_ref, ~np.isnan(settlement), settlement)


def _forwards(state: _SeriesState, spots: FloatArray, rows: IntArray) -> FloatArray:
    """[len(rows), len(spots)]: the shocked spots, or the settlement price of settled series."""
    settled = state.settled[rows, None]
    return np.where(settled, state.settlement[rows, None], spots[None, :])


def _price(
    state: _SeriesState,
    book: _Book,
    rows: IntArray,
    spots: FloatArray,
    sigma: FloatArray,
) -> FloatArray:
    """Black-76 prices [len(rows), len(spots)] of the series `rows` at the spots (vol: sigma)."""
    g = black76(
        _forwards(state, spots, rows),
        book.strike[rows, None],
        state.tau[rows, None],
        sigma[:, None],
        book.is_call[rows, None],
    )
    return g.price


def _mode_table(
    book: _Book,
    state: _SeriesState,
    grid: ScenarioGrid,
    v: float,
    params: MarginParams,
    rows: IntArray | None = None,
) -> FloatArray:
    """Option value per series and scenario, [U, 3(2n+1)], columns in scenario-index order.

    Only `rows` are priced when given (the others stay 0): the same inputs element by element as
    the full table, so the same values.
    """
    n_series = book.strike.size
    table = np.zeros((n_series, params.n_scenarios))
    if rows is None:
        rows = np.arange(n_series)
    if rows.size == 0:
        return table
    sigma = state.sigma[rows]
    shock = 1.0 + vol_shock(state.tau[rows], v, params)
    points = params.points
    for s, sig in ((DOWN, sigma / shock), (FLAT, sigma), (UP, sigma * shock)):
        table[rows, s * points : (s + 1) * points] = _price(state, book, rows, grid.spots, sig)
    return table


# ---------------------------------------------------------------------------------------------
# Values and health


class MarginResult(NamedTuple):
    """Per account: MtM, H_IM, H_MM, witnesses (scenario indices), optional scenario values."""

    mtm: FloatArray
    health_im: FloatArray
    health_mm: FloatArray
    witness_im: IntArray
    witness_mm: IntArray
    scenarios_im: FloatArray | None = None  # [A, 3(2n+1)] V_{j,s}, when asked for
    scenarios_mm: FloatArray | None = None


def contingency(
    portfolios: Portfolios, market: Market, params: MarginParams, is_im: bool
) -> FloatArray:
    """A_M = a_M sum_{q<0} |q| S + a_perp_M |q_f| S + (1 - c) conf_M (sum |q| + |q_f|) S, per
    account."""
    book = portfolios.book
    return _contingency(
        book.short, book.gross, np.abs(portfolios.perp_size), market, params.mode(is_im)
    )


def _contingency(
    short: FloatArray, gross: FloatArray, perp: FloatArray, market: Market, mode: ModeParams
) -> FloatArray:
    """A_M from the options' short and gross sizes and the perp's |q_f|."""
    s = market.spot
    return (
        mode.a * short * s
        + mode.a_perp * perp * s
        + (1.0 - market.confidence) * mode.conf * (gross + perp) * s
    )


def _values(
    options: FloatArray,
    cash: FloatArray,
    underlying: FloatArray,
    haircut: float,
    spots: FloatArray,
    perp: _Perp,
) -> FloatArray:
    """V_{j,s} = C + b S_j (1 - h) + V_f(S_j) + options[:, w], in place in `options`
    ([rows, 3(2n+1)]); spots [rows, 2n + 1], each account's own grid."""
    base = cash[:, None] + underlying[:, None] * spots * (1.0 - haircut) + perp.value(spots)
    values = options.reshape(-1, VOL_STATES, spots.shape[1])
    values += base[:, None, :]
    return options


def _mode_options(
    book: _Book,
    market: Market,
    params: MarginParams,
    state: _SeriesState,
    is_im: bool,
    refs: FloatArray,
    accounts: IntArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """sum_p q_p BS(...) per account and scenario of one mode, [A, 3(2n+1)], and each account's
    spots S_j [A, 2n + 1] (of `accounts` only, when given; refs are theirs).

    Accounts with the same sigma_ref share a grid: one pass per distinct value (at most one per
    held expiry, plus ref_vol), pricing only the series that group holds."""
    sizes_all = book.sizes if accounts is None else book.sizes[accounts]
    n_rows = sizes_all.shape[0]
    options = np.zeros((n_rows, params.n_scenarios))
    spots = np.zeros((n_rows, params.points))
    levels, group = np.unique(refs, return_inverse=True)
    for g, ref in enumerate(levels):
        members = np.flatnonzero(group == g)
        sizes = sizes_all[members]
        held = np.flatnonzero(np.bincount(sizes.indices, minlength=book.strike.size))
        grid = scenario_grid(market, params, is_im, float(ref))
        table = _mode_table(book, state, grid, params.mode(is_im).v, params, rows=held)
        options[members] = sizes @ table
        spots[members] = grid.spots
    return options, spots


def _health(values: FloatArray, contingency: FloatArray) -> tuple[FloatArray, IntArray]:
    """H_M = min_w V_w - A_M and the witness (lowest index of the minimum)."""
    witness = np.argmin(values, axis=1).astype(np.int64)
    lowest = np.take_along_axis(values, witness[:, None], axis=1)[:, 0]
    return lowest - contingency, witness


def evaluate(
    portfolios: Portfolios,
    market: Market,
    params: MarginParams,
    with_scenarios: bool = False,
) -> MarginResult:
    """The full margin model for every account: MtM, H_IM, H_MM and the witnesses.

    Exact (every scenario of both modes); with_scenarios=True also returns V_{j,s} per mode.
    Raises ValueError for a position on an unlisted expiry, or live without a surface entry.
    """
    book = portfolios.book
    state = _series_state(book, market)
    cash, underlying, perp = portfolios.cash, portfolios.underlying, portfolios.perp
    refs = _account_refs(book, state, params)
    out: dict[str, FloatArray | IntArray | None] = {}
    mtm = np.zeros(0)
    for is_im, tag in ((True, "im"), (False, "mm")):
        mode = params.mode(is_im)
        options, spots = _mode_options(book, market, params, state, is_im, refs)
        if not is_im:
            # MtM: the option part of the unshocked flat scenario (S_j = S, flat vol).
            at_spot = np.full(cash.size, market.spot)
            mtm = (
                cash
                + underlying * market.spot
                + perp.value(at_spot)
                + options[:, params.flat_index]
            )
        values = _values(options, cash, underlying, mode.haircut, spots, perp)
        out[f"health_{tag}"], out[f"witness_{tag}"] = _health(
            values, contingency(portfolios, market, params, is_im)
        )
        out[f"scenarios_{tag}"] = values if with_scenarios else None
    # H_IM covers MM's scenarios too: H_IM = min(IM's grid, H_MM), MM's witness offset.
    im_grid, mm = out["health_im"], out["health_mm"]
    assert im_grid is not None and mm is not None
    lower = mm < im_grid
    out["health_im"] = np.where(lower, mm, im_grid)
    out["witness_im"] = np.where(lower, out["witness_mm"] + params.n_scenarios, out["witness_im"])
    return MarginResult(mtm=mtm, **out)


def scenario_values(
    portfolios: Portfolios, market: Market, params: MarginParams, is_im: bool
) -> FloatArray:
    """V_{j,s} of every account, [A, 3(2n+1)], columns in scenario-index order (the contract's
    `scenario_value(account, scenario, is_im)` for all accounts and scenarios at once)."""
    book = portfolios.book
    state = _series_state(book, market)
    refs = _account_refs(book, state, params)
    options, spots = _mode_options(book, market, params, state, is_im, refs)
    mode = params.mode(is_im)
    return _values(
        options, portfolios.cash, portfolios.underlying, mode.haircut, spots, portfolios.perp
    )


# ---------------------------------------------------------------------------------------------
# The liquidatable set: a provable lower bound, then the exact model near the boundary


def mm_health_lower_bound(
    portfolios: Portfolios, market: Market, params: MarginParams
) -> tuple[FloatArray, FloatArray]:
    """A lower bound L <= H_MM per account, and the slack `tol` that absorbs float rounding.

    Returns (L, tol); an account with L >= tol has H_MM >= 0 (also as computed by `evaluate`),
    so `liquidatable` skips it. Cost: 5 Black-76 prices per series (21 for the exact grid at
    n = 3) and an A x 2U sparse product with 5 columns.

    Why L <= min_{j,s} V_{j,s} - A_MM. Write x_j = S_j, T_p(x, s) for the value of series p at
    spot x in vol state s (the table entry) and T0_p = T_p(S, flat). The perp's value is linear
    in the spot and the same in every vol state, V_f(x) = V_f(S) + q_f (x - S). For ANY numbers
    Delta_p, exactly

        V_{j,s} = C + V_f(S) + sum_p q_p T0_p + [b (1 - h) x_j + D (x_j - S)]
                  + sum_p q_p d_p(j, s),
        D = q_f + sum_p q_p Delta_p,   d_p(j, s) = T_p(x_j, s) - T0_p - Delta_p (x_j - S).

    Two facts about every position value, true for the model's functions: (i) for a fixed
    vol state, T_p(x, s) is convex in x (sigma'_{p,s} does not depend on the shocked spot: the
    surface is read at the current S; an expired position is an intrinsic value, convex, or a
    constant once settled); (ii) for a fixed x, T_p is non-decreasing in sigma, and
    sigma / (1 + v) <= sigma <= sigma (1 + v), so T_p(x, down) <= T_p(x, flat) <= T_p(x, up).
    - Long (q_p > 0), Delta_p = dT_p/dx at (S, down) (a subgradient for an expired position,
      0 once settled): by (i) T_p(x, down) lies above its tangent at S, by (ii) the other states
      lie above the down state, so d_p(j, s) >= l_p = T_p(S, down) - T0_p for every (j, s).
    - Short (q_p < 0), Delta_p = dT_p/dx at (S, flat) (any value works): by (ii) d_p(j, s) <=
      d_p(j, up), and x -> d_p(x, up) is convex by (i), so on the left half of the grid
      (j <= 0: x in [S_-n, S]) it is at most its larger end value r_p^L = max(T_p(S, up) - T0_p,
      T_p(S_-n, up) - T0_p - Delta_p (S_-n - S)); r_p^R likewise on the right half (j >= 0).
    The bracket is linear in x_j, so its minimum over a half grid is at one of its two ends.
    Hence for each half H in {L, R}: min over the scenarios of H of V_{j,s} >=
    C + V_f(S) + sum q T0 + min_{x in ends(H)} [b (1 - h) x + D (x - S)] + sum_{q>0} q l
    + sum_{q<0} q r^H, and L = min over the two halves minus A_MM (the perp's contingency
    included). (Each position's bound is attained at a grid point, so L is tight for one-sided
    books, a lone perp among them; it loses only where positions' worst scenarios differ.)

    Rounding: L and `evaluate`'s H_MM are float64 sums of at most a few dozen terms, each
    bounded by `scale` = |C| + b S_n + |D| S_n + |q_f| (S_n + P_f) + |Phi_f| + sum_p |q_p| (K_p
    + F_p + |T0_p| + |Delta_p| S_n + |bounds_p|) + A_MM (F_p the largest forward used); the
    table values carry Black-76's error, a few ulps of F + K. Both are below 1e-13 * scale, far
    below tol = 1e-9 * scale, so L >= tol implies the computed H_MM >= 0. A NaN bound never
    clears an account.
    """
    book = portfolios.book
    state = _series_state(book, market)
    return _lower_bound(portfolios, market, params, state)


def _screen_table(
    book: _Book, state: _SeriesState, grid: ScenarioGrid, params: MarginParams
) -> FloatArray:
    """Per signed series (row 2u: long, 2u + 1: short): [T0, Delta, bound L, bound R, scale]."""
    n_series = book.strike.size
    rows = np.arange(n_series)
    spot = grid.spots[params.n]
    shock = 1.0 + vol_shock(state.tau, params.mm.v, params)
    ends = grid.spots[[0, params.n, -1]]  # S_-n, S, S_n
    forward = _forwards(state, ends, rows)
    strike, tau, call = book.strike, state.tau, book.is_call
    flat = black76(forward[:, 1], strike, tau, state.sigma, call)
    down = black76(forward[:, 1], strike, tau, state.sigma / shock, call)
    up = black76(
        forward, strike[:, None], tau[:, None], (state.sigma * shock)[:, None], call[:, None]
    ).price
    keep = ~state.settled  # a settled position is a constant: slope 0
    t0 = flat.price
    delta_flat = np.where(keep, flat.delta, 0.0)
    delta_down = np.where(keep, down.delta, 0.0)
    low = down.price - t0
    at_spot = up[:, 1] - t0
    left = np.maximum(at_spot, up[:, 0] - t0 - delta_flat * (ends[0] - spot))
    right = np.maximum(at_spot, up[:, 2] - t0 - delta_flat * (ends[2] - spot))
    top = np.maximum(np.nanmax(forward, axis=1), ends[2])
    magnitude = strike + top + np.abs(t0)
    table = np.empty((2 * n_series, 5))
    table[0::2] = np.stack([t0, delta_down, low, low, magnitude], axis=1)
    table[1::2] = np.stack([t0, delta_flat, left, right, -magnitude], axis=1)
    table[0::2, 4] += np.abs(delta_down) * ends[2] + 2.0 * np.abs(low)
    table[1::2, 4] -= np.abs(delta_flat) * ends[2] + np.abs(left) + np.abs(right)
    return table


def _lower_bound(
    portfolios: Portfolios,
    market: Market,
    params: MarginParams,
    state: _SeriesState,
) -> tuple[FloatArray, FloatArray]:
    book = portfolios.book
    # One grid for the screen, the widest any account has (the largest sigma_ref): the bound
    # holds on every sub-interval of the spot range it covers.
    widest = float(_account_refs(book, state, params).max(initial=params.ref_vol))
    grid = scenario_grid(market, params, False, widest)
    agg = book.signed @ _screen_table(book, state, grid, params)
    cash, b, perp = portfolios.cash, portfolios.underlying, portfolios.perp
    spot = market.spot
    slope = b * (1.0 - params.mm.haircut)
    # D: the options' slopes plus the perp's q_f; the perp's value at S joins the constant.
    net = agg[:, 1] + perp.size
    lin = [slope * x + net * (x - spot) for x in grid.spots[[0, params.n, -1]]]
    left = np.minimum(lin[0], lin[1]) + agg[:, 2]
    right = np.minimum(lin[1], lin[2]) + agg[:, 3]
    a_mm = contingency(portfolios, market, params, False)
    at_spot = perp.value(np.full(cash.size, spot))
    bound = cash + at_spot + agg[:, 0] + np.minimum(left, right) - a_mm
    top = grid.spots[-1]
    perp_scale = np.abs(perp.size) * (top + perp.price) + np.abs(perp.owed)
    scale = (
        np.abs(cash)
        + b * top
        + (np.abs(agg[:, 1]) + np.abs(perp.size)) * top
        + perp_scale
        + agg[:, 4]
        + a_mm
    )
    return bound, SCREEN_REL_TOL * scale


def liquidatable(portfolios: Portfolios, market: Market, params: MarginParams) -> IntArray:
    """Indices (ascending) of the accounts with H_MM < 0: exactly those `evaluate` finds.

    Screen every account with `mm_health_lower_bound` (5 prices per series); accounts it cannot
    clear (bound < tol: near or below the boundary) get the exact MM model, priced only for the
    series they hold. The exact stage computes each of its values from the same inputs, element
    by element, as `evaluate`, so the set is the same, not an approximation of it; a cleared
    account has H_MM >= 0 by the bound's proof (see mm_health_lower_bound). Zero misses.
    """
    book = portfolios.book
    state = _series_state(book, market)
    bound, tol = _lower_bound(portfolios, market, params, state)
    near = np.flatnonzero(~(bound >= tol))
    if near.size == 0:
        return near.astype(np.int64)
    refs = _account_refs(book, state, params)[near]
    options, spots = _mode_options(book, market, params, state, False, refs, accounts=near)
    mm = params.mm
    cash, b, perp = portfolios.cash[near], portfolios.underlying[near], portfolios.perp.take(near)
    values = _values(options, cash, b, mm.haircut, spots, perp)
    a_mm = _contingency(book.short[near], book.gross[near], np.abs(perp.size), market, mm)
    health, _ = _health(values, a_mm)
    return near[health < 0].astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Greeks


class AccountGreeks(NamedTuple):
    """Per account: options plus the underlying collateral and the perp (delta per unit of
    spot, gamma, vega per 1.0 of vol, theta per year); cash has no Greeks, and the perp only
    a delta, q_f (funding is cash owed, not a Greek)."""

    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray


def account_greeks(portfolios: Portfolios, market: Market) -> AccountGreeks:
    """Black-76 Greeks at the current spot and surface, size-weighted, plus b + q_f in delta
    (RiskCalculator.greeks).

    Expired positions follow keeper.black76 at tau = 0: an unsettled one has the payoff's delta
    (1 or 0, one half at the money) and no other Greek; a settled one has none at all.
    """
    book = portfolios.book
    state = _series_state(book, market)
    rows = np.arange(book.strike.size)
    forward = _forwards(state, np.array([market.spot]), rows)[:, 0]
    g = black76(forward, book.strike, state.tau, state.sigma, book.is_call)
    delta = np.where(state.settled, 0.0, g.delta)
    per_series = np.stack([delta, g.gamma, g.vega, g.theta], axis=1)
    total = book.sizes @ per_series
    return AccountGreeks(
        delta=total[:, 0] + portfolios.underlying + portfolios.perp_size,
        gamma=total[:, 1],
        vega=total[:, 2],
        theta=total[:, 3],
    )
