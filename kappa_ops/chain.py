"""Batched chain reads into keeper.margin inputs (ape I/O).

`ChainReader` reads the margin parameters once, then per block the market (oracle median and
confidence, the vol surface of every live expiry) and every account (cash, underlying, packed
positions, open auction) in one Multicall3 `aggregate3` call when the chain has Multicall3 (on
local nodes it is injected with `set_code`), else call by call. Series data is cached (a series
never changes after listing). Values are converted from wads to float64 only here, at the
boundary, into `keeper.margin.Market` / `Portfolios`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keeper import margin as km
from keeper import perp as kp
from keeper.series import unpack_position

WAD = 10**18


@dataclass(frozen=True)
class Snapshot:
    """Accounts at one block: raw wads as read and the keeper.margin inputs built from them."""

    addresses: tuple[str, ...]
    cash_wad: tuple[int, ...]
    underlying_wad: tuple[int, ...]
    positions: tuple[tuple[tuple[int, int], ...], ...]  # per account: (series id, size wad)
    auction_open: np.ndarray  # bool per account
    perp: tuple[tuple[int, int, int], ...]  # per account: PerpBook's (q, P, F0) wads
    portfolios: km.Portfolios
    market: km.Market

    def index(self, address: str) -> int:
        return self.addresses.index(address)


def _inject_multicall() -> Any | None:
    """ape's Multicall3 helper, injecting the contract on a local node when needed."""
    from ape import networks
    from ape_ethereum import multicall

    try:
        from ape_ethereum.multicall.constants import MULTICALL3_ADDRESS, MULTICALL3_CODE
    except ImportError:  # pragma: no cover - ape layout
        return None
    provider = networks.provider
    code = bytes(provider.get_code(MULTICALL3_ADDRESS))
    if code:
        return multicall
    if not provider.network.is_local:
        return None
    try:
        provider.set_code(MULTICALL3_ADDRESS, MULTICALL3_CODE)
    except Exception:  # eth-tester cannot set code: read call by call
        return None
    multicall.Call.inject()
    return multicall


class ChainReader:
    """Reads the engine, oracle, vol oracle (and liquidator and perp book, if given) for
    keeper.margin."""

    def __init__(
        self,
        engine: Any,
        oracle: Any,
        vol_oracle: Any,
        liquidator: Any | None = None,
        perp_book: Any | None = None,
    ):
        self.engine = engine
        self.oracle = oracle
        self.vol = vol_oracle
        self.liquidator = liquidator
        self.perp_book = perp_book
        self.multicall = _inject_multicall()
        self._series: dict[int, tuple[int, int, bool]] = {}
        # Live expiries to read even without positions (the engine's reference vol is the
        # nearest live expiry's): set by whoever lists series (`track_expiries`).
        self.expiries: list[int] = []
        self.params = self._params()
        self.vol_min = int(vol_oracle.vol_min()) / WAD
        self.vol_max = int(vol_oracle.vol_max()) / WAD
        self.stale_markup = int(vol_oracle.stale_markup()) / WAD
        self.vol_heartbeat = int(vol_oracle.vol_heartbeat())

    def _params(self) -> km.MarginParams:
        im, mm, grid, ref_vol, _ = self.engine.risk_params()
        return km.MarginParams.from_wads(_fields(im), _fields(mm), _fields(grid), ref_vol)

    def track_expiries(self, expiries: Sequence[int]) -> None:
        self.expiries = sorted(set(self.expiries) | {int(x) for x in expiries})

    # -- batching --------------------------------------------------------------------------

    def batch(self, calls: Sequence[tuple[Any, tuple[Any, ...]]]) -> list[Any]:
        """Results of view calls [(method, args)], in one Multicall3 call when available."""
        if not calls:
            return []
        if self.multicall is None:
            return [method(*args) for method, args in calls]
        out: list[Any] = []
        for start in range(0, len(calls), 400):
            mc = self.multicall.Call()
            for method, args in calls[start : start + 400]:
                mc.add(method, *args)
            out.extend(mc())
        return out

    def series(self, ids: Sequence[int]) -> dict[int, tuple[int, int, bool]]:
        """(expiry, strike wad, is_call) per series id (cached)."""
        missing = sorted({i for i in ids if i not in self._series})
        for sid, s in zip(
            missing, self.batch([(self.engine.series, (i,)) for i in missing]), strict=True
        ):
            self._series[sid] = (int(s.expiry), int(s.strike), bool(s.is_call))
        return {i: self._series[i] for i in ids}

    # -- snapshot --------------------------------------------------------------------------

    def snapshot(self, addresses: Sequence[str], now: int) -> Snapshot:
        """Every account and the market at the latest block (`now`: its timestamp), in one
        batched call (the vol entries of tracked expiries included; with a perp book, the
        perp market and every account's position, its funding owed accrued to `now`)."""
        e, liq, book = self.engine, self.liquidator, self.perp_book
        per = 3 + (liq is not None) + (book is not None)
        live = list(self.expiries)
        calls: list[tuple[Any, tuple[Any, ...]]] = [(self.oracle.price, ())]
        if book is not None:
            calls.append((book.market, ()))
        head = len(calls)
        calls += [(self.vol.entry, (x,)) for x in live]
        calls += [(e.settlement_price, (x,)) for x in live]
        for a in addresses:
            calls += [(e.cash, (a,)), (e.underlying_balance, (a,)), (e.packed_positions, (a,))]
            if liq is not None:
                calls.append((liq.auction_start, (a,)))
            if book is not None:
                calls.append((book.position, (a,)))
        results = self.batch(calls)
        spot_wad, conf_wad, _ = (int(x) for x in _fields(results[0]))
        n = len(live)
        entries, settle = results[head : head + n], results[head + n : head + 2 * n]
        rows = results[head + 2 * n :]
        cash, under, positions, open_, perp = [], [], [], [], []
        for i in range(len(addresses)):
            row = rows[i * per : (i + 1) * per]
            cash.append(int(row[0]))
            under.append(int(row[1]))
            positions.append(tuple(unpack_position(int(p)) for p in row[2]))
            open_.append(bool(int(row[3])) if liq is not None else False)
            q, price, f0 = (int(x) for x in _fields(row[-1])) if book is not None else (0, 0, 0)
            perp.append((q, price, f0))
        ids = sorted({sid for pos in positions for sid, _ in pos})
        series = self.series(ids)
        held = sorted({series[i][0] for i in ids} - set(live))
        if held:  # positions on expiries nobody tracked: read them too
            self.track_expiries(held)
            return self.snapshot(addresses, now)
        market = self.market(spot_wad, conf_wad, now, live, entries, settle)
        index = 0
        if book is not None and any(q for q, _, _ in perp):
            m = perp_market(results[1])
            index = kp.index_at(m, spot_wad, max(now, m.funding_time))
        return Snapshot(
            addresses=tuple(addresses),
            cash_wad=tuple(cash),
            underlying_wad=tuple(under),
            positions=tuple(positions),
            auction_open=np.array(open_, dtype=bool),
            perp=tuple(perp),
            portfolios=self.portfolios(cash, under, positions, perp, index),
            market=market,
        )

    def market(
        self,
        spot_wad: int,
        conf_wad: int,
        now: int,
        expiries: Sequence[int],
        entries: Sequence[Any],
        settlement_prices: Sequence[Any],
    ) -> km.Market:
        """keeper.margin.Market from the oracle answer and the vol entries of `expiries`."""
        atm, skew, markup, settlement = [], [], [], []
        for entry, price in zip(entries, settlement_prices, strict=True):
            a, s, updated = (int(v) for v in _fields(entry))
            fed = updated != 0
            atm.append(a / WAD if fed else np.nan)
            skew.append(s / WAD)
            stale = fed and now - updated > self.vol_heartbeat
            markup.append(self.stale_markup if stale else 0.0)
            settlement.append(int(price) / WAD if int(price) else np.nan)
        return km.Market(
            spot=spot_wad / WAD,
            confidence=conf_wad / WAD,
            now=now,
            expiries=np.array(expiries, dtype=np.int64),
            atm=np.array(atm),
            skew=np.array(skew),
            settlement=np.array(settlement),
            # Market takes the VolOracle's limits as scalars too (its docstring: "arrays or
            # scalars"); its field annotation names only the array form.
            vol_min=self.vol_min,  # type: ignore[arg-type]
            vol_max=self.vol_max,  # type: ignore[arg-type]
            stale_markup=np.array(markup),
        )

    def portfolios(
        self,
        cash: Sequence[int],
        under: Sequence[int],
        positions: Sequence[Sequence[tuple[int, int]]],
        perp: Sequence[tuple[int, int, int]] = (),
        perp_index: int = 0,
    ) -> km.Portfolios:
        """keeper.margin.Portfolios; the perp's funding owed is q (F - F0) at the funding
        index `perp_index` (wads, as PerpBook.margin_terms; floats here)."""
        n = len(cash)
        width = max([len(p) for p in positions] + [1])
        strike = np.ones((n, width))
        expiry = np.zeros((n, width), dtype=np.int64)
        is_call = np.zeros((n, width), dtype=bool)
        size = np.zeros((n, width))
        for i, pos in enumerate(positions):
            for j, (sid, q) in enumerate(pos):
                e, k, c = self._series[sid]
                strike[i, j], expiry[i, j], is_call[i, j], size[i, j] = k / WAD, e, c, q / WAD
        terms = np.array(perp, dtype=np.float64).reshape(-1, 3) / WAD
        if not len(terms):
            terms = np.zeros((n, 3))
        q, price, f0 = terms.T
        return km.Portfolios(
            cash=np.array(cash, dtype=np.float64) / WAD,
            underlying=np.array(under, dtype=np.float64) / WAD,
            strike=strike,
            expiry=expiry,
            is_call=is_call,
            size=size,
            perp_size=q,
            perp_price=np.where(q != 0, price, 0.0),
            perp_owed=q * (perp_index / WAD - f0),
        )


def perp_market(value: Any) -> kp.Market:
    """PerpBook.market()'s struct as a keeper.perp.Market."""
    premium, mark_time, funding_time, index, params = (int(x) for x in _fields(value))
    return kp.Market(premium, mark_time, funding_time, index, kp.PerpParams.unpack(params))


def _fields(value: Any) -> tuple[Any, ...]:
    """The fields of an ape struct or tuple return value, in order."""
    if isinstance(value, tuple | list):
        return tuple(value)
    if hasattr(value, "values") and hasattr(value, "__dataclass_fields__"):
        return tuple(value.values())
    if hasattr(value, "__iter__"):
        return tuple(value)
    raise TypeError(f"cannot unpack {type(value).__name__}")
