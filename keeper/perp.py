"""The perpetual future's rules, the Python twin of contracts/margin/perp.vy (DESIGN.md
"Perpetual futures", docs/perps.md).

Exact integers with the contract's rounding (wads, 1e18 = 1.0), so a mirror that replays the
engine's events reproduces every market word, position and cash amount to the wei; plus float
helpers for monitoring and hedging (`funding_rate_float`, `ema_weight_float`,
`unsettled_float`, `max_hourly_funding`), which are approximations and say so.

    settlement  cash = floor(q * ((S - P) - (F - F0)) / 1e18), then P = S, F0 = F
    fill        |X - S| <= floor(band * S / 1e18), x = trunc((X - S) * 1e18 / S)
                pbar += trunc(w(dt) * (x - pbar) / 1e18), w(dt) = 1 - 2^(-min(dt, h) / h)
    funding     F += trunc(clamp(pbar * S / c, -m * S, m * S) * dt / (3600 * 1e18))
    payment     the buyer pays the seller ceil(|size| * |X - S| / 1e18), signed by X - S

`exp_wad` is contracts/math/wad.vy's, step for step (Vyper's `unsafe_div` truncates toward
zero, `>>` on a signed value floors), so the EMA weight matches to the wei.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "HOUR",
    "WAD",
    "Market",
    "PerpBook",
    "PerpError",
    "PerpParams",
    "Position",
    "accrue",
    "ema_weight_float",
    "exp_wad",
    "fill",
    "fill_payment",
    "funding_owed",
    "funding_rate",
    "funding_rate_float",
    "index_at",
    "mark",
    "max_hourly_funding",
    "new_market",
    "pack_market",
    "pack_position",
    "premium_of",
    "replay",
    "set_params",
    "settle",
    "trade",
    "unpack_market",
    "unpack_position",
    "unsettled_float",
    "weight",
]

FloatArray = NDArray[np.float64]

WAD = 10**18
HOUR = 3600
LN2_WAD = 693_147_180_559_945_309
BP = 10**14
MILLIONTH = 10**12
MIN_BAND_BP, MAX_BAND_BP = 10, 2_000
MAX_RATE_MILLIONTHS = 10_000
MIN_HALF_LIFE, MAX_HALF_LIFE = 60, 86_400
MAX_CONVERGENCE_HOURS = 168
MAX_PRICE = 10**36
MAX_SIZE = 2**96
MAX_TIME = 2**40 - 1
PREMIUM_OFFSET = 2**63
SIZE_OFFSET = 2**127
UINT = 2**256

# contracts/math/wad.vy's exp_wad constants.
_Q96 = 2**96
_HALF_Q96 = 2**95
_LN2_Q96 = 54916777467707473351141471128
_FIVE_POW_18 = 5**18
_EXP_MIN = -42139678854452767622
_EXP_MAX = 135305999368893231589


class PerpError(ValueError):
    """A rule the contract enforces with a revert; the message is the revert reason."""


def _tdiv(a: int, b: int) -> int:
    """Integer division truncated toward zero (the EVM's SDIV, Vyper's unsafe_div)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _floor_wad(product: int) -> int:
    return product // WAD


def _ceil_div(x: int, d: int) -> int:
    return -((-x) // d)


def exp_wad(x: int) -> int:
    """e^x for a wad x, as contracts/math/wad.vy computes it (to the wei)."""
    if x < _EXP_MIN:
        return 0
    if x > _EXP_MAX:
        raise PerpError("wad: exp overflow")
    x96 = _tdiv(x << 78, _FIVE_POW_18)
    k = (_tdiv(x96 << 96, _LN2_Q96) + _HALF_Q96) >> 96
    r = x96 - k * _LN2_Q96
    r2 = (r * r) >> 96
    e = ((((((r2 + 840 * _Q96) * r2) >> 96) + 75600 * _Q96) * r2) >> 96) + 665280 * _Q96
    o = (((((42 * r2 + 10080 * _Q96) * r2) >> 96) + 332640 * _Q96) * r) >> 96
    q = _tdiv((e + o) << 96, e - o)
    scaled = q * WAD
    if k >= 96:
        return scaled << (k - 96)
    s = 96 - k
    return (scaled + (1 << (s - 1))) >> s


@dataclass(frozen=True)
class PerpParams:
    """The perp's parameters (wads but half_life in seconds and convergence_hours in hours),
    checked against the contract's hard bounds: band in [0.001, 0.2] in whole basis points,
    max_rate in [0, 0.01] per hour in whole millionths, half_life in [60, 86400] s,
    convergence_hours in [1, 168]."""

    band: int
    half_life: int
    convergence_hours: int
    max_rate: int

    def __post_init__(self) -> None:
        ok = (
            self.band % BP == 0
            and MIN_BAND_BP * BP <= self.band <= MAX_BAND_BP * BP
            and self.max_rate % MILLIONTH == 0
            and 0 <= self.max_rate <= MAX_RATE_MILLIONTHS * MILLIONTH
            and MIN_HALF_LIFE <= self.half_life <= MAX_HALF_LIFE
            and 1 <= self.convergence_hours <= MAX_CONVERGENCE_HOURS
        )
        if not ok:
            raise PerpError("engine: bad perp params")

    def pack(self) -> int:
        """The contract's 50-bit params lane."""
        return (
            self.band // BP
            | (self.max_rate // MILLIONTH) << 11
            | self.half_life << 25
            | self.convergence_hours << 42
        )

    @classmethod
    def unpack(cls, lane: int) -> PerpParams:
        """The parameters of a params lane (as the contract's readers decode it)."""
        return cls(
            band=(lane & 2047) * BP,
            half_life=(lane >> 25) & 131071,
            convergence_hours=(lane >> 42) & 255,
            max_rate=((lane >> 11) & 16383) * MILLIONTH,
        )


@dataclass(frozen=True)
class Market:
    """perp.vy's Market: EMA premium pbar, mark and funding times, funding index F."""

    premium: int
    mark_time: int
    funding_time: int
    index: int
    params: PerpParams


@dataclass(frozen=True)
class Position:
    """perp.vy's Position: signed size q, last settled index price P, funding index F0."""

    size: int = 0
    price: int = 0
    index: int = 0


def _check_index(spot: int) -> None:
    if not 0 < spot <= MAX_PRICE:
        raise PerpError("engine: perp index out of range")


def new_market(params: PerpParams, now: int) -> Market:
    """A fresh market listed at `now`."""
    if now > MAX_TIME:
        raise PerpError("engine: perp time out of range")
    return Market(0, now, now, 0, params)


def funding_rate(market: Market) -> int:
    """clamp(pbar / convergence_hours, -max_rate, max_rate) per hour, rounded toward zero."""
    cap = market.params.max_rate
    return min(max(_tdiv(market.premium, market.params.convergence_hours), -cap), cap)


def index_at(market: Market, spot: int, now: int) -> int:
    """The funding index accrued to `now` at index price `spot`."""
    _check_index(spot)
    if now < market.funding_time:
        raise PerpError("engine: perp clock went back")
    if now > MAX_TIME:
        raise PerpError("engine: perp time out of range")
    if now == market.funding_time:
        return market.index
    cap = market.params.max_rate * spot
    per_hour = min(max(_tdiv(market.premium * spot, market.params.convergence_hours), -cap), cap)
    return market.index + _tdiv(per_hour * (now - market.funding_time), HOUR * WAD)


def accrue(market: Market, spot: int, now: int) -> Market:
    """The market with funding accrued to `now`."""
    return replace(market, index=index_at(market, spot, now), funding_time=now)


def weight(dt: int, half_life: int) -> int:
    """The EMA weight 1 - 2^(-min(dt, h) / h) of a fill dt seconds after the previous one."""
    f = min(dt, half_life)
    return WAD - exp_wad(-_tdiv(LN2_WAD * f, half_life))


def premium_of(price: int, spot: int, band: int) -> int:
    """A fill's premium (X - S) / S, after the band check."""
    width = _tdiv(band * spot, WAD)
    gap = price - spot
    if not -width <= gap <= width:
        raise PerpError("engine: perp price outside band")
    return _tdiv(gap * WAD, spot)


def fill(market: Market, price: int, spot: int, now: int) -> Market:
    """The market after a fill at `price`: funding accrued, then the EMA step."""
    m = accrue(market, spot, now)
    x = premium_of(price, spot, m.params.band)
    w = weight(now - m.mark_time, m.params.half_life)
    return replace(m, premium=m.premium + _tdiv(w * (x - m.premium), WAD), mark_time=now)


def set_params(market: Market, params: PerpParams, spot: int, now: int) -> Market:
    """The market under new parameters (accrued under the old ones, pbar clamped to the band)."""
    m = accrue(market, spot, now)
    return replace(m, premium=min(max(m.premium, -params.band), params.band), params=params)


def mark(market: Market, spot: int) -> int:
    """M = S * (1 + pbar), rounded toward S."""
    _check_index(spot)
    return spot + _tdiv(market.premium * spot, WAD)


def settle(position: Position, spot: int, index: int) -> tuple[Position, int]:
    """(settled position, cash credited): floor(q * ((S - P) - (F - F0)) / 1e18)."""
    _check_index(spot)
    move = (spot - position.price) - (index - position.index)
    return Position(position.size, spot, index), _floor_wad(position.size * move)


def trade(position: Position, delta: int, spot: int, index: int) -> tuple[Position, int]:
    """Settle, then change the size by `delta`."""
    settled, cash = settle(position, spot, index)
    size = position.size + delta
    if not -MAX_SIZE <= size <= MAX_SIZE:
        raise PerpError("engine: perp size too large")
    return replace(settled, size=size), cash


def funding_owed(position: Position, index: int) -> int:
    """Unsettled funding q * (F - F0), rounded up (positive: the account pays)."""
    return _ceil_div(position.size * (index - position.index), WAD)


def fill_payment(size: int, price: int, spot: int) -> int:
    """What the buyer pays the seller: |size| * (X - S), magnitude rounded up."""
    amount = _ceil_div(abs(size) * abs(price - spot), WAD)
    return -amount if price < spot else amount


def _word(value: int) -> int:
    return value % UINT


def _signed(word: int) -> int:
    return word - UINT if word >= 2**255 else word


def pack_market(market: Market) -> tuple[int, int]:
    """The market's two storage words."""
    word0 = (
        (market.premium + PREMIUM_OFFSET)
        | market.mark_time << 64
        | market.funding_time << 104
        | market.params.pack() << 144
    )
    return word0, _word(market.index)


def unpack_market(words: tuple[int, int]) -> Market:
    """The market from its two storage words."""
    w0, w1 = words
    return Market(
        premium=(w0 & (2**64 - 1)) - PREMIUM_OFFSET,
        mark_time=(w0 >> 64) & MAX_TIME,
        funding_time=(w0 >> 104) & MAX_TIME,
        index=_signed(w1),
        params=PerpParams.unpack(w0 >> 144),
    )


def pack_position(position: Position) -> tuple[int, int]:
    """A position's two storage words."""
    return (position.size + SIZE_OFFSET) | position.price << 128, _word(position.index)


def unpack_position(words: tuple[int, int]) -> Position:
    """A position from its two storage words (two zero words: never traded)."""
    w0, w1 = words
    if w0 == 0:
        return Position()
    return Position((w0 & (2**128 - 1)) - SIZE_OFFSET, w0 >> 128, _signed(w1))


@dataclass
class PerpBook:
    """The perp market and its accounts as contracts/margin/PerpBook.vy keeps them (the
    mirror's state), with each account's settled cash summed (the engine applies it): fills
    settle both sides and move the payment, settlements accrue and settle one account, moves
    pass a fraction of a position at the index. `apply` replays PerpBook's events."""

    market: Market
    positions: dict[str, Position] = field(default_factory=dict)
    cash: dict[str, int] = field(default_factory=dict)
    open_interest: int = 0

    def _trade(self, account: str, delta: int, spot: int) -> int:
        old = self.positions.get(account, Position())
        if old.size == 0 and delta == 0:
            return 0  # a flat position that does not trade is not rewritten (PerpBook.vy)
        position, amount = trade(old, delta, spot, self.market.index)
        self.positions[account] = position
        self.cash[account] = self.cash.get(account, 0) + amount
        self.open_interest += max(position.size, 0) - max(old.size, 0)
        return amount

    def _atomic(self) -> tuple[Market, dict[str, Position], dict[str, int], int]:
        return self.market, dict(self.positions), dict(self.cash), self.open_interest

    def fill(
        self, buyer: str, seller: str, size: int, price: int, spot: int, now: int
    ) -> tuple[int, int]:
        """A fill of `size` > 0 units at `price` between two accounts: (the buyer's cash,
        the seller's cash)."""
        if buyer == seller:
            raise PerpError("perp: self trade")
        if size <= 0:
            raise PerpError("perp: size")
        before = self._atomic()
        try:
            self.market = fill(self.market, price, spot, now)
            payment = fill_payment(size, price, spot)
            buyer_cash = self._trade(buyer, size, spot) - payment
            seller_cash = self._trade(seller, -size, spot) + payment
        except PerpError:
            # The contract reverts the whole fill.
            self.market, self.positions, self.cash, self.open_interest = before
            raise
        self.cash[buyer] -= payment
        self.cash[seller] += payment
        return buyer_cash, seller_cash

    def settle(self, account: str, spot: int, now: int) -> int:
        """Settle one account: the cash credited. An account without a position changes
        nothing (PerpBook.vy: no accrual, no event)."""
        if self.positions.get(account, Position()).size == 0:
            return 0
        self.market = accrue(self.market, spot, now)
        return self._trade(account, 0, spot)

    def move(self, source: str, target: str, fraction: int, spot: int, now: int) -> tuple[int, int]:
        """A liquidation's move of `fraction` (a wad) of the source's position to the target
        at the index, after both settle: (the source's cash, the target's cash). A source
        without a position moves nothing and changes nothing."""
        if source == target:
            raise PerpError("perp: self trade")
        if not 0 < fraction <= WAD:
            raise PerpError("perp: fraction")
        size = self.positions.get(source, Position()).size
        if size == 0:
            return 0, 0  # nothing to move: no accrual, no event (PerpBook.vy)
        before = self._atomic()
        try:
            self.market = accrue(self.market, spot, now)
            moved = _tdiv(size * fraction, WAD)
            return self._trade(source, -moved, spot), self._trade(target, moved, spot)
        except PerpError:
            self.market, self.positions, self.cash, self.open_interest = before
            raise

    def set_params(self, params: PerpParams, spot: int, now: int) -> None:
        """New parameters, accrued under the old ones first."""
        self.market = set_params(self.market, params, spot, now)

    @classmethod
    def listed(cls, params_lane: int, now: int) -> PerpBook:
        """The book as PerpListed(params, time) leaves it."""
        return cls(new_market(PerpParams.unpack(params_lane), now))

    def apply(self, name: str, args: Mapping[str, Any]) -> None:
        """Replay one PerpBook event (after PerpListed: `listed`); the cash amounts the event
        carries must be the ones the rules give, else PerpError (the mirror has drifted)."""
        a = {k: v if isinstance(v, str) else int(v) for k, v in args.items()}
        if name == "PerpParamsSet":
            self.set_params(PerpParams.unpack(int(a["params"])), int(a["spot"]), int(a["time"]))
            return
        if name == "PerpFill":
            got: tuple[int, ...] = self.fill(
                str(a["buyer"]), str(a["seller"]), int(a["size"]), int(a["price"]),
                int(a["spot"]), int(a["time"]),
            )  # fmt: skip
            want: tuple[int, ...] = (int(a["buyer_cash"]), int(a["seller_cash"]))
        elif name == "PerpSettled":
            got = (self.settle(str(a["account"]), int(a["spot"]), int(a["time"])),)
            want = (int(a["cash"]),)
        elif name == "PerpMoved":
            size = self.positions.get(str(a["source"]), Position()).size
            # The event names the size moved; replay it as the fraction that gives it.
            self.market = accrue(self.market, int(a["spot"]), int(a["time"]))
            moved = int(a["size"])
            if abs(moved) > abs(size):
                raise PerpError(f"PerpMoved of {moved} from a position of {size}")
            got = (
                self._trade(str(a["source"]), -moved, int(a["spot"])),
                self._trade(str(a["target"]), moved, int(a["spot"])),
            )
            want = (int(a["source_cash"]), int(a["target_cash"]))
        else:
            raise PerpError(f"not a PerpBook event: {name}")
        if got != want:
            raise PerpError(f"{name}: the rules give {got}, the event says {want}")


def replay(
    events: Iterable[tuple[str, Mapping[str, Any]]], book: PerpBook | None = None
) -> PerpBook:
    """PerpBook.vy's events, (name, fields) in log order, applied to `book` (None: the first
    event must be PerpListed); see `PerpBook.apply`."""
    for name, args in events:
        if name == "PerpListed":
            book = PerpBook.listed(int(args["params"]), int(args["time"]))
        elif book is None:
            raise PerpError(f"{name} before PerpListed")
        else:
            book.apply(name, dict(args))
    if book is None:
        raise PerpError("no PerpListed event")
    return book


# ---------------------------------------------------------------------------------------------
# Float helpers (monitoring and hedging; the exact rules are the integer functions above)


def ema_weight_float(dt: ArrayLike, half_life: float) -> FloatArray:
    """1 - 2^(-min(dt, h) / h), elementwise."""
    f = np.minimum(np.asarray(dt, dtype=np.float64), half_life) / half_life
    # -expm1 keeps full precision for small weights, where 1 - 2^-f would cancel.
    return np.asarray(-np.expm1(-f * np.log(2.0)), dtype=np.float64)


def funding_rate_float(premium: ArrayLike, convergence_hours: float, max_rate: float) -> FloatArray:
    """clamp(p / convergence_hours, -max_rate, max_rate) per hour, elementwise."""
    p = np.asarray(premium, dtype=np.float64)
    return np.asarray(np.clip(p / convergence_hours, -max_rate, max_rate), dtype=np.float64)


def unsettled_float(
    size: ArrayLike, price: ArrayLike, index0: ArrayLike, spot: float, index: float
) -> FloatArray:
    """q * (S - P) - q * (F - F0) per position, in USD (floats, vectorized over positions)."""
    q = np.asarray(size, dtype=np.float64)
    move = (spot - np.asarray(price, dtype=np.float64)) - (
        index - np.asarray(index0, dtype=np.float64)
    )
    return np.asarray(q * move, dtype=np.float64)


def max_hourly_funding(size: ArrayLike, spot: float, max_rate: float) -> FloatArray:
    """The most funding an hour can charge a position: max_rate * |q| * S (USD)."""
    return np.asarray(
        max_rate * np.abs(np.asarray(size, dtype=np.float64)) * spot, dtype=np.float64
    )
