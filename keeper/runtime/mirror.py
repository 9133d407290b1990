"""The account mirror: every engine account rebuilt from decoded events (pure, no chain I/O).

`Mirror.apply(event)` replays one MarginEngine, Liquidator or PerpBook event with the engine's
own integer arithmetic (contracts/margin/MarginEngine.vy: `_add_cash`, `_add_position`,
`move_portfolio`, `socialize_loss`; the cash pool's rules are keeper/interest.py's), so supply
shares, borrow shares, the underlying balance, the position words (in
storage order) and the open auction of every account equal the contract's storage after the
same logs, exactly. Events are applied in log order (block, log index); within a transaction the
engine logs each effect after performing it and before the next one depends on it, so applying
an event at its position reproduces the storage.

Accounts are discovered from the events themselves (a Deposit, Fill, CashMoved, ... names every
account it touches). Each account gets a row; exact state lives in Python integers (sizes and
balances exceed int64), and a float64 copy of every row (cash, underlying, positions padded to
`width`) feeds keeper.margin, rewritten only for the rows an event touched.

Evaluation cost follows what changed. Rows are grouped in shards of `shard_size`; each shard keeps
its `keeper.margin.Portfolios` (and so its cached series book) until one of its rows changes.
`evaluate(market, params)` re-prices every shard from the cached books (a market-wide change:
spot, vol, time); `evaluate(market, params, rows)` evaluates only the given rows (the accounts
an event touched). Neither reads the chain.

The perp: PerpBook's events are replayed by its integer twin (keeper.perp.PerpBook.apply, which
raises when an event's cash disagrees with the rules: the mirror drifted), and each settlement's
cash is credited as the engine does. Each row keeps its stored perp position (q, P, F0); the
margin model's funding owed, q (F - F0), is valued with the twin's funding index accrued to the
market's time at its spot, rewritten for every row (vectorized) when that index moves.

Interest: the indices come from the engine's `Accrued` events (and `LossSocialized`'s supply
index); between touches `evaluate` values cash with the indices accrued to the market's time
(keeper.interest.accrue_indices over the mirrored share totals and the `InterestParams`), as the
engine's views do.

Checkpoints (`to_checkpoint` / `from_checkpoint`) are plain JSON-able dicts with exact integers,
so a restart resumes from the last processed block.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from keeper import interest as ki
from keeper import margin as km
from keeper import perp as kp
from keeper.series import PERP_ID, pack_position, series_terms

WAD = 10**18
CHECKPOINT_VERSION = 3

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# Events that change one account's state or the market as the margin model sees it.
ENGINE_EVENTS = (
    "Deposit",
    "Withdraw",
    "Fill",
    "Swap",
    "PositionSettled",
    "PortfolioMoved",
    "CashMoved",
    "Accrued",
    "LossSocialized",
    "ReserveCollected",
    "InterestParams",
    "SeriesListed",
    "ExpirySettled",
    "RiskParams",
    "OperatorSet",
)
LIQUIDATOR_EVENTS = ("AuctionStarted", "Bid", "AuctionEnded")
PERP_EVENTS = ("PerpListed", "PerpParamsSet", "PerpFill", "PerpSettled", "PerpMoved")


# Events whose effect the engine applied after accruing interest at their block.
CASH_TOUCHES = frozenset(
    {
        "Deposit",
        "Withdraw",
        "Fill",
        "Swap",
        "PositionSettled",
        "CashMoved",
        "LossSocialized",
        "ReserveCollected",
        "InterestParams",
        "Accrued",
        # The engine accrues interest before it calls PerpBook (fill, settle_perp, a
        # liquidation's move).
        "PerpFill",
        "PerpSettled",
        "PerpMoved",
    }
)


class MirrorError(ValueError):
    """An event the mirror cannot apply (one-line message): the mirror no longer matches."""


@dataclass(frozen=True)
class Event:
    """A decoded log: the event name, where it is (block, log index) and its arguments
    (addresses as checksummed strings, integers as int). `timestamp` is the block's timestamp
    (needed for AuctionStarted: the auction's start)."""

    name: str
    block: int
    index: int
    args: Mapping[str, Any]
    timestamp: int = 0


@dataclass
class Account:
    """One account as the contracts store it (exact integers)."""

    shares: int = 0
    debt: int = 0
    underlying: int = 0
    positions: list[list[int]] = field(default_factory=list)  # [series id, size wad], storage order
    auction_start: int = 0  # 0: no open auction
    perp: tuple[int, int, int] = (0, 0, 0)  # PerpBook's position: size, settled price, F0

    def cash(self, supply_index: int, borrow_index: int) -> int:
        """MarginEngine._cash: supply shares at the supply index (rounded down), or minus the
        borrow shares at the borrow index (rounded up)."""
        if self.shares:
            return ki.supply_value(self.shares, supply_index)
        return -ki.debt_value(self.debt, borrow_index)

    def words(self) -> list[int]:
        """The packed positions, as MarginEngine.packed_positions returns them."""
        return [pack_position(sid, size) for sid, size in self.positions]


@dataclass
class Evaluation:
    """keeper.margin results per row (NaN until a row is first evaluated) and when (block
    timestamp) each row was last evaluated."""

    mtm: FloatArray
    health_im: FloatArray
    health_mm: FloatArray
    witness_im: IntArray
    witness_mm: IntArray
    at: IntArray
    # Account Greeks (keeper.margin.account_greeks), when evaluated with greeks=True.
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray

    FIELDS = (
        "mtm",
        "health_im",
        "health_mm",
        "witness_im",
        "witness_mm",
        "at",
        "delta",
        "gamma",
        "vega",
        "theta",
    )

    @classmethod
    def empty(cls, n: int) -> Evaluation:
        nan = np.full(n, np.nan)
        ints = np.zeros(n, np.int64)
        return cls(
            nan.copy(),
            nan.copy(),
            nan.copy(),
            ints.copy(),
            ints.copy(),
            ints.copy(),
            nan.copy(),
            nan.copy(),
            nan.copy(),
            nan.copy(),
        )

    def grow(self, n: int) -> None:
        old = self.mtm.size
        if n <= old:
            return
        fresh = Evaluation.empty(n - old)
        for name in self.FIELDS:
            setattr(self, name, np.concatenate([getattr(self, name), getattr(fresh, name)]))


class Mirror:
    """Every account of one engine (and its liquidator), from events; see the module."""

    # The float arrays keeper.margin reads, one row per account (grown by `_alloc`).
    cash_f: NDArray[np.float64]
    underlying_f: NDArray[np.float64]
    strike_f: NDArray[np.float64]
    expiry_i: NDArray[np.int64]
    call_b: NDArray[np.bool_]
    size_f: NDArray[np.float64]
    auction_s: NDArray[np.int64]
    shares_f: NDArray[np.float64]
    debt_f: NDArray[np.float64]
    perp_size_f: NDArray[np.float64]
    perp_price_f: NDArray[np.float64]
    perp_index_f: NDArray[np.float64]
    perp_owed_f: NDArray[np.float64]

    def __init__(
        self,
        cash_token: str,
        underlying_token: str,
        cash_scale: int,
        underlying_scale: int,
        width: int = 16,
        shard_size: int = 1024,
    ) -> None:
        if width < 1 or shard_size < 1:
            raise ValueError("width and shard_size must be >= 1")
        self.cash_token = cash_token.lower()
        self.underlying_token = underlying_token.lower()
        self.cash_scale = int(cash_scale)
        self.underlying_scale = int(underlying_scale)
        self.shard_size = int(shard_size)
        self.width = int(width)
        self.addresses: list[str] = []
        self.index: dict[str, int] = {}
        self.accounts: list[Account] = []
        self.supply_index = WAD
        self.borrow_index = WAD
        # The block time of the engine's last cash touch (its last accrual) and the rate
        # parameters (InterestParams): what accrues the indices to a later time.
        self.accrued_at = 0
        self.rate_params = ki.RateParams()
        # The indices the float cash rows were last written at, and the time they value cash at.
        self._priced_at = (WAD, WAD)
        self._value_time = 0
        # MarginEngine.deficit: socialized losses beyond every other positive balance.
        self.deficit = 0
        self.listed: set[int] = set()
        # PerpBook's twin once the perp is listed, and the funding index the perp rows were
        # last valued at (owed = q (F - F0)).
        self.perp: kp.PerpBook | None = None
        self._perp_valued_at: float = 0.0
        self.expiries: list[int] = []
        self.settlement: dict[int, int] = {}
        # Operators per account (MarginEngine.set_operator): the hedger's accounts.
        self.operators: dict[str, set[str]] = {}
        self.last_block = -1
        self.last_block_hash: str | None = None
        self.events_applied = 0
        # Rows whose exact state changed since the float arrays were last written.
        self._stale: set[int] = set()
        # Rows touched since the owner last took them (`take_touched`): what to re-evaluate.
        self._touched: set[int] = set()
        # Bumped on market-wide changes the mirror sees in events (share price, a listing, a
        # settlement price, risk parameters): every account must be re-evaluated.
        self.market_epoch = 0
        self.params_epoch = 0
        self._reprice_cash = False
        self._alloc(0)
        self.evaluation = Evaluation.empty(0)
        self._shards: list[km.Portfolios | None] = []

    # -- rows ------------------------------------------------------------------------------

    @property
    def n_accounts(self) -> int:
        return len(self.accounts)

    def row(self, address: str) -> int:
        """The row of an account, created on first sight."""
        key = address.lower()
        found = self.index.get(key)
        if found is not None:
            return found
        i = len(self.accounts)
        self.index[key] = i
        self.addresses.append(address)
        self.accounts.append(Account())
        if i >= self._capacity:
            self._alloc(max(2 * self._capacity, 64))
        self.evaluation.grow(i + 1)
        self._stale.add(i)
        self._touched.add(i)
        return i

    def account(self, address: str) -> Account | None:
        i = self.index.get(address.lower())
        return None if i is None else self.accounts[i]

    def take_touched(self) -> NDArray[np.int64]:
        """Rows touched by events since the last call (ascending), and forget them."""
        rows = np.array(sorted(self._touched), dtype=np.int64)
        self._touched.clear()
        return rows

    # -- exact arithmetic (MarginEngine.vy) -------------------------------------------------

    def _touch(self, i: int) -> None:
        self._stale.add(i)
        self._touched.add(i)

    def _add_cash(self, i: int, amount: int) -> None:
        """MarginEngine._add_cash at the current indices (keeper.interest.Pool.add_cash)."""
        a = self.accounts[i]
        pool = ki.Pool(
            borrow_index=self.borrow_index, supply_index=self.supply_index, last=self.accrued_at
        )
        key = self.addresses[i]
        pool.shares[key], pool.debts[key] = a.shares, a.debt
        pool.total_supply_shares, pool.total_borrow_shares = a.shares, a.debt
        pool.add_cash(key, amount, self.accrued_at)
        a.shares, a.debt = pool.shares[key], pool.debts[key]
        self._touch(i)

    def _add_underlying(self, i: int, amount: int) -> None:
        a = self.accounts[i]
        if a.underlying + amount < 0:
            raise MirrorError(f"underlying of {self.addresses[i]} would go negative")
        a.underlying += amount
        self._touch(i)

    def _add_position(self, i: int, sid: int, delta: int) -> None:
        positions = self.accounts[i].positions
        for k, (held, size) in enumerate(positions):
            if held == sid:
                new = size + delta
                if new == 0:
                    positions[k] = positions[-1]
                    positions.pop()
                else:
                    positions[k] = [sid, new]
                break
        else:
            positions.append([sid, delta])
        self._touch(i)

    def _token_is_cash(self, token: str) -> bool:
        t = token.lower()
        if t == self.cash_token:
            return True
        if t == self.underlying_token:
            return False
        raise MirrorError(f"unknown token {token}")

    # -- events ----------------------------------------------------------------------------

    def apply_many(self, events: Iterable[Event]) -> int:
        n = 0
        for event in events:
            self.apply(event)
            n += 1
        return n

    def apply(self, event: Event) -> None:
        """Apply one decoded event; unknown event names are ignored (e.g. Paused)."""
        handler = getattr(self, f"_on_{event.name}", None)
        if handler is None:
            return
        if event.timestamp > 0 and event.name in CASH_TOUCHES and self._touches_cash(event):
            # The engine accrued at this block before the event's effect.
            self.accrued_at = int(event.timestamp)
        try:
            handler(event.args, event)
        except KeyError as exc:
            raise MirrorError(f"{event.name} at block {event.block}: missing {exc}") from None
        self.events_applied += 1

    def _touches_cash(self, event: Event) -> bool:
        token = event.args.get("token")
        return token is None or str(token).lower() == self.cash_token

    def _on_Deposit(self, a: Mapping[str, Any], _: Event) -> None:
        i = self.row(a["account"])
        if self._token_is_cash(a["token"]):
            self._add_cash(i, int(a["amount_wad"]))
        else:
            self._add_underlying(i, int(a["amount_wad"]))

    def _on_Withdraw(self, a: Mapping[str, Any], _: Event) -> None:
        i = self.row(a["account"])
        if self._token_is_cash(a["token"]):
            self._add_cash(i, -int(a["amount_wad"]))
        else:
            self._add_underlying(i, -int(a["amount_wad"]))

    def _on_Fill(self, a: Mapping[str, Any], _: Event) -> None:
        maker, taker = self.row(a["maker"]), self.row(a["taker"])
        sid = int(a["series_id"])
        if sid == PERP_ID:
            return  # a perp fill: PerpBook's PerpFill carries its cash
        delta, cash = int(a["amount"]), int(a["premium"])
        if not a["maker_is_buy"]:
            delta, cash = -delta, -cash
        self._add_position(maker, sid, delta)
        self._add_position(taker, sid, -delta)
        self._add_cash(maker, -cash)
        self._add_cash(taker, cash)

    def _on_Swap(self, a: Mapping[str, Any], _: Event) -> None:
        i = self.row(a["account"])
        amount_in, amount_out = int(a["amount_in"]), int(a["amount_out"])
        if self._token_is_cash(a["token_in"]):
            self._add_cash(i, -amount_in * self.cash_scale)
            self._add_underlying(i, amount_out * self.underlying_scale)
        else:
            self._add_underlying(i, -amount_in * self.underlying_scale)
            self._add_cash(i, amount_out * self.cash_scale)

    def _on_PositionSettled(self, a: Mapping[str, Any], _: Event) -> None:
        i = self.row(a["account"])
        sid = int(a["series_id"])
        self._add_cash(i, int(a["payoff"]))
        positions = self.accounts[i].positions
        kept = [p for p in positions if p[0] != sid]
        if len(kept) != len(positions) - 1:
            raise MirrorError(f"PositionSettled: {self.addresses[i]} holds no series {sid}")
        self.accounts[i].positions = kept

    def _on_PortfolioMoved(self, a: Mapping[str, Any], _: Event) -> None:
        src, dst = self.row(a["account"]), self.row(a["receiver"])
        f = int(a["fraction"])
        for sid, size in list(self.accounts[src].positions):
            product = size * f
            moved = abs(product) // WAD * (1 if product >= 0 else -1)  # toward zero (SDIV)
            if moved != 0:
                self._add_position(src, sid, -moved)
                self._add_position(dst, sid, moved)
        underlying = self.accounts[src].underlying * f // WAD
        self.accounts[src].underlying -= underlying
        self.accounts[dst].underlying += underlying
        self._touch(src)
        self._touch(dst)

    def _on_CashMoved(self, a: Mapping[str, Any], _: Event) -> None:
        sender, receiver = self.row(a["sender"]), self.row(a["receiver"])
        amount = int(a["amount"])
        self._add_cash(sender, -amount)
        self._add_cash(receiver, amount)

    def _on_Accrued(self, a: Mapping[str, Any], _: Event) -> None:
        self.supply_index = int(a["supply_index"])
        self.borrow_index = int(a["borrow_index"])
        # Every balance changed value: every row's cash is recomputed (vectorized, in `sync`)
        # and every account re-evaluated.
        self._reprice_cash = True
        self.market_epoch += 1

    def _on_LossSocialized(self, a: Mapping[str, Any], _: Event) -> None:
        # MarginEngine.socialize_loss lowers the supply index to `supply_index` and credits the
        # amount plus what the receiver's own shares lost with it (it is left out of the loss);
        # the part beyond every other balance is the engine's deficit.
        i = self.row(a["receiver"])
        index = int(a["supply_index"])
        cut, self.supply_index = self.supply_index - index, index
        self.deficit += int(a.get("deficit", 0))
        self._add_cash(i, int(a["amount"]) + self.accounts[i].shares * cut // WAD)
        self._reprice_cash = True
        self.market_epoch += 1

    def _on_ReserveCollected(self, a: Mapping[str, Any], _: Event) -> None:
        self._add_cash(self.row(a["fund"]), int(a["amount"]))

    def _on_InterestParams(self, a: Mapping[str, Any], _: Event) -> None:
        self.rate_params = ki.RateParams(
            int(a["base"]),
            int(a["slope1"]),
            int(a["slope2"]),
            int(a["kink"]),
            int(a["reserve_factor"]),
            int(a["utilization_cap"]),
        )

    def _on_SeriesListed(self, a: Mapping[str, Any], _: Event) -> None:
        self.listed.add(int(a["series_id"]))
        expiry = int(a["expiry"])
        if expiry not in self.expiries:
            self.expiries = sorted([*self.expiries, expiry])
        self.market_epoch += 1

    def _on_ExpirySettled(self, a: Mapping[str, Any], _: Event) -> None:
        self.settlement[int(a["expiry"])] = int(a["price"])
        self.market_epoch += 1

    def _on_RiskParams(self, _a: Mapping[str, Any], _: Event) -> None:
        self.params_epoch += 1
        self.market_epoch += 1

    def _on_OperatorSet(self, a: Mapping[str, Any], _: Event) -> None:
        self.row(a["account"])
        ops = self.operators.setdefault(str(a["account"]).lower(), set())
        if a["allowed"]:
            ops.add(str(a["operator"]).lower())
        else:
            ops.discard(str(a["operator"]).lower())

    def operated_by(self, operator: str) -> list[int]:
        """Rows of the accounts that allow `operator` to trade and hedge for them."""
        op = operator.lower()
        return sorted(self.index[acct] for acct, ops in self.operators.items() if op in ops)

    def _on_PerpListed(self, a: Mapping[str, Any], _: Event) -> None:
        self.perp = kp.PerpBook.listed(int(a["params"]), int(a["time"]))
        self.market_epoch += 1

    def _on_PerpParamsSet(self, a: Mapping[str, Any], event: Event) -> None:
        self._perp_apply(event)
        self.market_epoch += 1

    def _on_PerpFill(self, a: Mapping[str, Any], event: Event) -> None:
        self._perp_apply(event, (("buyer", "buyer_cash"), ("seller", "seller_cash")))

    def _on_PerpSettled(self, a: Mapping[str, Any], event: Event) -> None:
        self._perp_apply(event, (("account", "cash"),))

    def _on_PerpMoved(self, a: Mapping[str, Any], event: Event) -> None:
        self._perp_apply(event, (("source", "source_cash"), ("target", "target_cash")))

    def _perp_apply(self, event: Event, sides: tuple[tuple[str, str], ...] = ()) -> None:
        """Replay a PerpBook event on the twin (addresses lower-cased, as rows are keyed),
        then credit each side's cash in the engine's order (settle_perp credits nothing for a
        zero settlement) and store its new position."""
        if self.perp is None:
            raise MirrorError(f"{event.name} at block {event.block} before PerpListed")
        args = {k: v.lower() if isinstance(v, str) else v for k, v in event.args.items()}
        try:
            self.perp.apply(event.name, args)
        except kp.PerpError as exc:
            raise MirrorError(f"{event.name} at block {event.block}: {exc}") from None
        for who, amount in sides:
            address = str(args[who])
            i = self.row(str(event.args[who]))
            cash = int(args[amount])
            if cash != 0 or event.name != "PerpSettled":
                self._add_cash(i, cash)
            p = self.perp.positions.get(address, kp.Position())
            self.accounts[i].perp = (p.size, p.price, p.index)
            self._touch(i)

    def _on_AuctionStarted(self, a: Mapping[str, Any], event: Event) -> None:
        i = self.row(a["account"])
        if event.timestamp <= 0:
            raise MirrorError("AuctionStarted needs its block timestamp")
        self.accounts[i].auction_start = int(event.timestamp)
        self._touch(i)

    def _on_AuctionEnded(self, a: Mapping[str, Any], _: Event) -> None:
        i = self.row(a["account"])
        self.accounts[i].auction_start = 0
        self._touch(i)

    def _on_Bid(self, a: Mapping[str, Any], _: Event) -> None:
        # The balances move with the engine's PortfolioMoved / CashMoved events.
        self._touch(self.row(a["account"]))
        self.row(a["bidder"])

    # -- float arrays for keeper.margin ----------------------------------------------------

    def _alloc(self, capacity: int) -> None:
        old = getattr(self, "_capacity", 0)
        w = self.width

        def grow(name: str, shape: tuple[int, ...], dtype: type, fill: float) -> None:
            fresh: NDArray[Any] = np.full(shape, fill, dtype=dtype)
            if old:
                prev = getattr(self, name)
                if prev.ndim == 2:
                    fresh[: prev.shape[0], : prev.shape[1]] = prev
                else:
                    fresh[: prev.shape[0]] = prev
            setattr(self, name, fresh)

        grow("cash_f", (capacity,), np.float64, 0.0)
        grow("underlying_f", (capacity,), np.float64, 0.0)
        grow("strike_f", (capacity, w), np.float64, 1.0)
        grow("expiry_i", (capacity, w), np.int64, 0)
        grow("call_b", (capacity, w), np.bool_, False)
        grow("size_f", (capacity, w), np.float64, 0.0)
        grow("auction_s", (capacity,), np.int64, 0)
        grow("shares_f", (capacity,), np.float64, 0.0)  # cash shares / 1e18
        grow("debt_f", (capacity,), np.float64, 0.0)  # cash debt / 1e18
        grow("perp_size_f", (capacity,), np.float64, 0.0)  # q / 1e18
        grow("perp_price_f", (capacity,), np.float64, 0.0)  # P / 1e18
        grow("perp_index_f", (capacity,), np.float64, 0.0)  # F0 / 1e18
        grow("perp_owed_f", (capacity,), np.float64, 0.0)  # q (F - F0), USD
        self._capacity = capacity

    def _widen(self, width: int) -> None:
        n = self._capacity
        for name, fill, dtype in (
            ("strike_f", 1.0, np.float64),
            ("expiry_i", 0, np.int64),
            ("call_b", False, np.bool_),
            ("size_f", 0.0, np.float64),
        ):
            fresh = np.full((n, width), fill, dtype=dtype)
            fresh[:, : self.width] = getattr(self, name)
            setattr(self, name, fresh)
        self.width = width
        self._shards = [None] * len(self._shards)

    def indices_at(self, now: int) -> tuple[int, int]:
        """(supply index, borrow index) accrued to `now`, as the engine's views compute them."""
        if now <= self.accrued_at:
            return self.supply_index, self.borrow_index
        supply = sum(a.shares for a in self.accounts)
        borrow = sum(a.debt for a in self.accounts)
        ib, is_ = ki.accrue_indices(
            self.borrow_index,
            self.supply_index,
            supply,
            borrow,
            self.rate_params,
            now - self.accrued_at,
        )
        return is_, ib

    def perp_index_at(self, spot: float, now: int) -> float:
        """The perp's funding index (USD per unit) accrued to `now` at index price `spot`, as
        PerpBook.margin_terms accrues it (0 before the perp is listed)."""
        if self.perp is None:
            return 0.0
        market = self.perp.market
        return kp.index_at(market, round(spot * WAD), max(now, market.funding_time)) / WAD

    def sync(self, now: int | None = None, spot: float | None = None) -> None:
        """Rewrite the float rows of every account whose exact state changed (only those), and
        every row's cash when the indices it is valued at change (one vectorized expression):
        the last accrual's, or those accrued to `now`; with `spot`, every perp row's funding
        owed when the funding index accrued to `now` moves."""
        if now is not None:
            self._value_time = now
        priced = self.indices_at(self._value_time)
        if self._reprice_cash or priced != self._priced_at:
            self._reprice_cash = False
            self._priced_at = priced
            n = self.n_accounts
            self.cash_f[:n] = ki.cash_values(self.shares_f[:n], self.debt_f[:n], *priced)
            self._shards = [None] * len(self._shards)
        if spot is not None and self.perp is not None:
            index = self.perp_index_at(spot, self._value_time)
            if index != self._perp_valued_at:
                self._perp_valued_at = index
                n = self.n_accounts
                self.perp_owed_f[:n] = self.perp_size_f[:n] * (index - self.perp_index_f[:n])
                self._shards = [None] * len(self._shards)
        if not self._stale:
            return
        rows = sorted(self._stale)
        self._stale.clear()
        widest = max(len(self.accounts[i].positions) for i in rows)
        if widest > self.width:
            self._widen(widest)
        for i in rows:
            a = self.accounts[i]
            self.cash_f[i] = a.cash(*self._priced_at) / WAD
            self.shares_f[i] = a.shares / WAD
            self.debt_f[i] = a.debt / WAD
            self.underlying_f[i] = a.underlying / WAD
            self.auction_s[i] = a.auction_start
            n = len(a.positions)
            self.size_f[i, n:] = 0.0
            self.strike_f[i, n:] = 1.0
            self.expiry_i[i, n:] = 0
            self.call_b[i, n:] = False
            for j, (sid, size) in enumerate(a.positions):
                expiry, strike, is_call = series_terms(sid)
                self.size_f[i, j] = size / WAD
                self.strike_f[i, j] = strike / WAD
                self.expiry_i[i, j] = expiry
                self.call_b[i, j] = is_call
            q, price, index = a.perp
            self.perp_size_f[i] = q / WAD
            self.perp_price_f[i] = price / WAD
            self.perp_index_f[i] = index / WAD
            self.perp_owed_f[i] = self.perp_size_f[i] * (self._perp_valued_at - index / WAD)
        n_shards = -(-self.n_accounts // self.shard_size)
        self._shards.extend([None] * (n_shards - len(self._shards)))
        for k in {i // self.shard_size for i in rows}:
            self._shards[k] = None

    def portfolios(self, rows: Sequence[int] | NDArray[np.int64]) -> km.Portfolios:
        """keeper.margin.Portfolios of the given rows (in that order)."""
        self.sync()
        idx = np.asarray(rows, dtype=np.int64)
        return km.Portfolios(
            self.cash_f[idx],
            self.underlying_f[idx],
            self.strike_f[idx],
            self.expiry_i[idx],
            self.call_b[idx],
            self.size_f[idx],
            self.perp_size_f[idx],
            self.perp_price_f[idx],
            self.perp_owed_f[idx],
        )

    def _shard(self, k: int) -> km.Portfolios:
        pf = self._shards[k]
        if pf is None:
            lo, hi = k * self.shard_size, min((k + 1) * self.shard_size, self.n_accounts)
            pf = km.Portfolios(
                self.cash_f[lo:hi],
                self.underlying_f[lo:hi],
                self.strike_f[lo:hi],
                self.expiry_i[lo:hi],
                self.call_b[lo:hi],
                self.size_f[lo:hi],
                self.perp_size_f[lo:hi],
                self.perp_price_f[lo:hi],
                self.perp_owed_f[lo:hi],
            )
            self._shards[k] = pf
        return pf

    @property
    def auction_start(self) -> IntArray:
        """The open auction's start per row (0: none); current after `sync`."""
        self.sync()
        return self.auction_s[: self.n_accounts]

    def evaluate(
        self,
        market: km.Market,
        params: km.MarginParams,
        rows: Sequence[int] | NDArray[np.int64] | None = None,
        greeks: bool = False,
        books: Sequence[int] | None = None,
    ) -> NDArray[np.int64]:
        """keeper.margin.evaluate for every row (rows=None: shard by shard from the cached
        books, only the listed `books` when given) or for the given rows only, and
        keeper.margin.account_greeks too when `greeks`; results land in `self.evaluation`.
        Cash is valued with interest accrued to `market.now`, the perp's funding owed at the
        index accrued to it at `market.spot`. Returns the rows evaluated."""
        self.sync(int(market.now), float(market.spot))
        ev = self.evaluation
        if rows is None:
            done = []
            for k in range(len(self._shards)) if books is None else books:
                if k >= len(self._shards):
                    continue
                lo = k * self.shard_size
                pf = self._shard(k)
                if pf.n_accounts == 0:
                    continue
                where = slice(lo, lo + pf.n_accounts)
                self._store(where, km.evaluate(pf, market, params))
                if greeks:
                    self._store_greeks(where, km.account_greeks(pf, market))
                done.append(np.arange(lo, lo + pf.n_accounts, dtype=np.int64))
            evaluated = np.concatenate(done) if done else np.zeros(0, dtype=np.int64)
            ev.at[evaluated] = market.now
            return evaluated
        idx = np.unique(np.asarray(rows, dtype=np.int64))
        if idx.size:
            pf = self.portfolios(idx)
            self._store(idx, km.evaluate(pf, market, params))
            if greeks:
                self._store_greeks(idx, km.account_greeks(pf, market))
            ev.at[idx] = market.now
        return idx

    def _store(self, where: slice | NDArray[np.int64], r: km.MarginResult) -> None:
        ev = self.evaluation
        ev.mtm[where] = r.mtm
        ev.health_im[where] = r.health_im
        ev.health_mm[where] = r.health_mm
        ev.witness_im[where] = r.witness_im
        ev.witness_mm[where] = r.witness_mm

    def _store_greeks(self, where: slice | NDArray[np.int64], g: km.AccountGreeks) -> None:
        ev = self.evaluation
        ev.delta[where], ev.gamma[where] = g.delta, g.gamma
        ev.vega[where], ev.theta[where] = g.vega, g.theta

    def holders_of(self, expiries: Sequence[int]) -> NDArray[np.int64]:
        """Rows holding a position on any of the given expiries (vectorized)."""
        self.sync()
        n = self.n_accounts
        if not expiries or n == 0:
            return np.zeros(0, dtype=np.int64)
        held = np.isin(self.expiry_i[:n], np.asarray(list(expiries), dtype=np.int64))
        held &= self.size_f[:n] != 0
        return np.flatnonzero(held.any(axis=1)).astype(np.int64)

    # -- checkpoints -----------------------------------------------------------------------

    def to_checkpoint(self, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Everything needed to resume, as a JSON-able dict (exact integers)."""
        return {
            "version": CHECKPOINT_VERSION,
            "meta": dict(meta or {}),
            "last_block": self.last_block,
            "last_block_hash": self.last_block_hash,
            "cash_token": self.cash_token,
            "underlying_token": self.underlying_token,
            "cash_scale": self.cash_scale,
            "underlying_scale": self.underlying_scale,
            "width": self.width,
            "supply_index": self.supply_index,
            "borrow_index": self.borrow_index,
            "accrued_at": self.accrued_at,
            "rate_params": list(self.rate_params.as_tuple()),
            "deficit": self.deficit,
            "listed": sorted(self.listed),
            "expiries": list(self.expiries),
            "settlement": {str(k): v for k, v in sorted(self.settlement.items())},
            "operators": {k: sorted(v) for k, v in sorted(self.operators.items()) if v},
            "perp_market": None if self.perp is None else list(kp.pack_market(self.perp.market)),
            "perp_open_interest": 0 if self.perp is None else self.perp.open_interest,
            "events_applied": self.events_applied,
            "accounts": [
                {
                    "address": addr,
                    "shares": a.shares,
                    "debt": a.debt,
                    "underlying": a.underlying,
                    "positions": [list(p) for p in a.positions],
                    "auction_start": a.auction_start,
                    "perp": list(a.perp),
                }
                for addr, a in zip(self.addresses, self.accounts, strict=True)
            ],
        }

    @classmethod
    def from_checkpoint(cls, data: Mapping[str, Any], shard_size: int = 1024) -> Mirror:
        if not isinstance(data, Mapping) or data.get("version") != CHECKPOINT_VERSION:
            raise MirrorError(f"checkpoint: expected version {CHECKPOINT_VERSION}")
        try:
            m = cls(
                str(data["cash_token"]),
                str(data["underlying_token"]),
                int(data["cash_scale"]),
                int(data["underlying_scale"]),
                width=int(data["width"]),
                shard_size=shard_size,
            )
            m.last_block = int(data["last_block"])
            m.last_block_hash = data.get("last_block_hash")
            m.supply_index = int(data["supply_index"])
            m.borrow_index = int(data["borrow_index"])
            m.accrued_at = int(data["accrued_at"])
            m.rate_params = ki.RateParams(*(int(x) for x in data["rate_params"]))
            m._priced_at = (m.supply_index, m.borrow_index)
            m.deficit = int(data.get("deficit", 0))
            m.listed = {int(x) for x in data["listed"]}
            m.expiries = sorted(int(x) for x in data["expiries"])
            m.settlement = {int(k): int(v) for k, v in data["settlement"].items()}
            m.events_applied = int(data.get("events_applied", 0))
            m.operators = {
                str(k): {str(o) for o in v} for k, v in data.get("operators", {}).items()
            }
            words = data["perp_market"]
            if words is not None:
                m.perp = kp.PerpBook(kp.unpack_market((int(words[0]), int(words[1]))))
                m.perp.open_interest = int(data["perp_open_interest"])
            for entry in data["accounts"]:
                address = str(entry["address"])
                i = m.row(address)
                a = m.accounts[i]
                a.shares, a.debt = int(entry["shares"]), int(entry["debt"])
                a.underlying = int(entry["underlying"])
                a.positions = [[int(s), int(q)] for s, q in entry["positions"]]
                a.auction_start = int(entry["auction_start"])
                q, price, index = (int(x) for x in entry["perp"])
                a.perp = (q, price, index)
                if m.perp is not None and (q, price, index) != (0, 0, 0):
                    m.perp.positions[address.lower()] = kp.Position(q, price, index)
        except (KeyError, TypeError, ValueError) as exc:
            raise MirrorError(f"checkpoint: malformed ({type(exc).__name__}: {exc})") from None
        return m


def repair_account(
    m: Mirror,
    address: str,
    shares: int,
    debt: int,
    underlying: int,
    words: Sequence[int],
    auction_start: int,
    perp: tuple[int, int, int] = (0, 0, 0),
) -> None:
    """Overwrite one account with what the chain holds (the drift check's repair)."""
    from keeper.series import unpack_position

    i = m.row(address)
    a = m.accounts[i]
    a.shares, a.debt, a.underlying = int(shares), int(debt), int(underlying)
    a.positions = [list(unpack_position(int(w))) for w in words]
    a.auction_start = int(auction_start)
    a.perp = perp
    if m.perp is not None:
        m.perp.positions[address.lower()] = kp.Position(*perp)
    m._touch(i)
