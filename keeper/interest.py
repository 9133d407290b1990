"""The cash pool's interest model in exact integers: contracts/margin/interest.vy and the cash
accounting of MarginEngine.vy (`_add_cash`, `_accrue`, `socialize_loss`, `collect_reserve`),
restated so that the same sequence of actions gives the same storage to the wei.

Positive cash is supply shares, negative cash is borrow shares. The supply index `I_s` and the
borrow index `I_b` (wads, from 1e18) turn shares into USD: supply rounded down, debt rounded
up. An accrual over `dt` seconds at utilization U (borrows / supply at the indices before it,
capped at 1) charges `r(U) = base + slope1 min(U, kink) + slope2 max(U - kink, 0)` a year as
`I_b += ceil(I_b r dt / YEAR)`, and suppliers get `(1 - reserve_factor)` of the interest
`B dI_b`; what is left (and every rounding) is the reserve, paid to the insurance fund by
`collect_reserve`. The reserve is tracked by one offset `K` (wad^2 units) so that accrual
writes nothing but the indices: `reserve = (B I_b - S I_s - K) / 1e18`, and every change of the
share totals moves `K` by `dB I_b - dS I_s`.

The pure functions (`rate`, `utilization`, `accrue_indices`) take and return plain integers;
`Pool` holds one engine's cash state and applies the engine's operations. `keeper/runtime/
mirror.py` uses `Pool` to replay the engine's events; `tests/` replays random sequences
against the contract with it (tests/unit/margin/golden_cash.json).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

WAD = 10**18
YEAR = 31_536_000
BP = 10**14
BPS = 10_000
INDEX_MAX = 2**112 - 1
SHARE_MAX = 2**96 - 1
MIN_SUPPLY_INDEX = WAD // 100


class CashError(ValueError):
    """An operation the engine would revert (one-line reason, as the engine's)."""


@dataclass(frozen=True)
class RateParams:
    """The interest parameters as wads (whole basis points), as `set_interest_params` takes
    them; `utilization_cap` limits new borrowing, the rest set the rate and the reserve."""

    base: int = 0
    slope1: int = 0
    slope2: int = 0
    kink: int = 0
    reserve_factor: int = 0
    utilization_cap: int = WAD

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        return (
            self.base,
            self.slope1,
            self.slope2,
            self.kink,
            self.reserve_factor,
            self.utilization_cap,
        )

    def packed(self) -> int:
        """The rate's five parameters as MarginEngine stores them (contracts/margin/interest.vy
        pack_params: basis points in lanes of 10, 14, 15, 14 and 11 bits), as
        `MarginEngine.cash_totals()[2]` returns them."""
        bps = [v // BP for v in self.as_tuple()[:5]]
        return bps[0] | bps[1] << 10 | bps[2] << 24 | bps[3] << 39 | bps[4] << 53

    def check(self) -> None:
        """The engine's hard bounds (contracts/margin/interest.vy pack_params)."""
        values = self.as_tuple()
        ok = (
            all(v % BP == 0 and v >= 0 for v in values)
            and self.base <= 1_000 * BP
            and self.slope1 <= 10_000 * BP
            and self.slope2 <= 30_000 * BP
            and 1_000 * BP <= self.kink <= 9_900 * BP
            and self.reserve_factor <= 2_000 * BP
            and 5_000 * BP <= self.utilization_cap <= WAD
        )
        if not ok:
            raise CashError("engine: bad interest params")


def utilization(supply: int, borrows: int) -> int:
    """U = borrows / supply, a wad capped at 1 (1 with borrows and no supply)."""
    if borrows >= supply:
        return 0 if borrows == 0 else WAD
    return borrows * WAD // supply


def rate(params: RateParams, u: int) -> int:
    """The borrow rate per year at utilization `u` (wads), rounded down as cash.vy's `rate`."""
    kink = params.kink
    r = params.base + params.slope1 * min(u, kink) // WAD
    if u > kink:
        r += params.slope2 * (u - kink) // WAD
    return r


def supply_value(shares: int, supply_index: int) -> int:
    return shares * supply_index // WAD


def debt_value(shares: int, borrow_index: int) -> int:
    return -(-shares * borrow_index // WAD)


def accrue_indices(
    borrow_index: int,
    supply_index: int,
    supply_shares: int,
    borrow_shares: int,
    params: RateParams,
    dt: int,
) -> tuple[int, int]:
    """(I_b, I_s) after `dt` seconds (interest.vy `accrue`)."""
    if dt <= 0:
        return borrow_index, supply_index
    u = utilization(
        supply_value(supply_shares, supply_index), debt_value(borrow_shares, borrow_index)
    )
    r = rate(params, u)
    db = -(-borrow_index * r * dt // (WAD * YEAR))
    if borrow_index + db > INDEX_MAX:
        return borrow_index, supply_index
    if supply_shares > 0 and borrow_shares > 0:
        reserve_bps = params.reserve_factor // BP
        gain = borrow_shares * db * (BPS - reserve_bps) // (BPS * supply_shares)
        supply_index = min(supply_index + gain, INDEX_MAX)
    return borrow_index + db, supply_index


def cash_values(
    supply_shares: NDArray[np.float64],
    borrow_shares: NDArray[np.float64],
    supply_index: int,
    borrow_index: int,
) -> NDArray[np.float64]:
    """Cash in USD of many accounts (shares as floats in units of 1e18), vectorized: what
    keeper.margin.Portfolios takes as `cash`, valued at indices accrued to the evaluation's
    time (`Pool.at(now)`)."""
    return np.where(
        supply_shares > 0,
        supply_shares * (supply_index / WAD),
        -borrow_shares * (borrow_index / WAD),
    )


@dataclass
class Pool:
    """One engine's cash state: indices, share totals, the reserve offset, every account's
    supply and borrow shares, and the deficit (socialized loss beyond every other balance)."""

    params: RateParams = field(default_factory=RateParams)
    borrow_index: int = WAD
    supply_index: int = WAD
    last: int = 0
    total_supply_shares: int = 0
    total_borrow_shares: int = 0
    reserve_offset: int = 0
    deficit: int = 0
    shares: dict[str, int] = field(default_factory=dict)
    debts: dict[str, int] = field(default_factory=dict)
    # Bookkeeping for the conservation checks (not engine state): interest charged to
    # borrowers and credited to suppliers over every accrual, in wad^2 units.
    interest_charged: int = 0
    interest_credited: int = 0
    collected: int = 0  # reserve paid to the fund (USD wad)
    # Rounding kept by transfers between accounts (wad^2 units): it stays in the reserve.
    transfer_dust: int = 0

    # -- views ---------------------------------------------------------------------------

    def cash(self, account: str) -> int:
        """MarginEngine.cash at the stored indices (accrue first for "now")."""
        return self.cash_of(self.shares.get(account, 0), self.debts.get(account, 0))

    def cash_of(self, shares: int, debt_shares: int) -> int:
        """The cash of supply shares or borrow shares at the stored indices."""
        if shares:
            return supply_value(shares, self.supply_index)
        return -debt_value(debt_shares, self.borrow_index)

    def total_supply(self) -> int:
        return supply_value(self.total_supply_shares, self.supply_index)

    def total_borrows(self) -> int:
        return debt_value(self.total_borrow_shares, self.borrow_index)

    def utilization(self) -> int:
        return utilization(self.total_supply(), self.total_borrows())

    def borrow_rate(self) -> int:
        return rate(self.params, self.utilization())

    def reserve(self) -> int:
        """Interest not yet paid to the insurance fund (USD wad, rounded down)."""
        return (
            self.total_borrow_shares * self.borrow_index
            - self.total_supply_shares * self.supply_index
            - self.reserve_offset
        ) // WAD

    def copy(self) -> Pool:
        """An independent copy (the balance maps are copied, not shared)."""
        return replace(self, shares=dict(self.shares), debts=dict(self.debts))

    def at(self, now: int) -> Pool:
        """A copy accrued to `now` (the engine's views)."""
        copy = self.copy()
        copy.accrue(now)
        return copy

    # -- operations (the engine's, in order) ------------------------------------------------

    def accrue(self, now: int) -> bool:
        """MarginEngine._accrue; returns whether the indices changed (an Accrued event)."""
        if now == self.last:
            return False
        before = (self.borrow_index, self.supply_index)
        ib, is_ = accrue_indices(
            self.borrow_index,
            self.supply_index,
            self.total_supply_shares,
            self.total_borrow_shares,
            self.params,
            now - self.last,
        )
        self.interest_charged += self.total_borrow_shares * (ib - self.borrow_index)
        self.interest_credited += self.total_supply_shares * (is_ - self.supply_index)
        self.borrow_index, self.supply_index, self.last = ib, is_, now
        return (ib, is_) != before

    def _move(self, account: str, ds: int, db: int, flow: bool) -> None:
        s = self.total_supply_shares + ds
        b = self.total_borrow_shares + db
        if s > SHARE_MAX or b > SHARE_MAX:
            raise CashError("engine: cash totals too large")
        self.total_supply_shares, self.total_borrow_shares = s, b
        moved = db * self.borrow_index - ds * self.supply_index
        if flow:
            self.reserve_offset += moved
        else:
            self.transfer_dust += moved
        self.shares[account] = self.shares.get(account, 0) + ds
        self.debts[account] = self.debts.get(account, 0) + db

    def add_cash(self, account: str, amount: int, now: int, flow: bool = True) -> None:
        """MarginEngine._add_cash: accrue, then credit (repay debt, rounded against the
        payer, then mint supply shares rounded down) or debit (burn supply shares rounded up,
        the rest borrowed in borrow shares rounded up). `flow` False: one side of a transfer
        between accounts (a premium, a liquidation's cash), whose rounding stays in the
        reserve."""
        self.accrue(now)
        ib, is_ = self.borrow_index, self.supply_index
        ds = db = 0
        if amount >= 0:
            credit = amount
            owed_shares = self.debts.get(account, 0)
            if owed_shares:
                owed = debt_value(owed_shares, ib)
                if credit >= owed:
                    db, credit = -owed_shares, credit - owed
                else:
                    db, credit = -(credit * WAD // ib), 0
            ds = credit * WAD // is_
        else:
            debit = -amount
            held = self.shares.get(account, 0)
            needed = -(-debit * WAD // is_)
            if needed <= held:
                ds = -needed
            else:
                covered = held * is_ // WAD
                ds = -held
                db = -(-(debit - covered) * WAD // ib)
        self._move(account, ds, db, flow)

    def borrowed(self, account: str, amount: int, now: int, cap: int | None = None) -> None:
        """A debit that may borrow (a withdrawal or a swap's input): if the account's debt grew,
        utilization afterwards must be within the cap ("engine: utilization cap")."""
        before = self.debts.get(account, 0)
        saved = self.copy()
        self.add_cash(account, -amount, now)
        limit = self.params.utilization_cap if cap is None else cap
        if self.debts.get(account, 0) > before and self.utilization() > limit:
            # The engine reverts: nothing of the debit stays.
            self.__dict__.update(saved.__dict__)
            raise CashError("engine: utilization cap")

    def socialize(self, receiver: str, amount: int, now: int) -> int:
        """MarginEngine.socialize_loss: lower the supply index so every other positive balance
        loses `amount` (rounded against them, the index kept >= MIN_SUPPLY_INDEX), record what
        they cannot cover as deficit, and credit the receiver `amount` plus what its own shares
        lost. Returns the new supply index."""
        self.accrue(now)
        is_ = self.supply_index
        own = self.shares.get(receiver, 0)
        others = self.total_supply_shares - own
        cut = 0
        if others > 0 and is_ > MIN_SUPPLY_INDEX:
            cut = min(-(-amount * WAD // others), is_ - MIN_SUPPLY_INDEX)
        covered = min(amount, others * cut // WAD)
        self.supply_index = is_ - cut
        self.reserve_offset += self.total_supply_shares * cut
        self.deficit += amount - covered
        self.add_cash(receiver, amount + own * cut // WAD, now)
        return self.supply_index

    def collect_reserve(self, fund: str, now: int) -> int:
        """MarginEngine.collect_reserve: pay the reserve (rounded down) into the fund's cash;
        returns the amount."""
        self.accrue(now)
        amount = self.reserve()
        self.reserve_offset += amount * WAD
        self.collected += amount
        self.add_cash(fund, amount, now)
        return amount

    def set_params(self, params: RateParams, now: int) -> None:
        """MarginEngine.set_interest_params: accrue at the old rate, then switch."""
        params.check()
        self.accrue(now)
        self.params = params
