"""Feed keeper/margin.py (the float64 mirror of the margin model) from chain state, and compare.

The inputs are what the engine itself reads: balances and positions (from the lens state), the
series' terms (from the listing), and the market: OracleAggregator.price() (spot, confidence),
block time, the engine's live expiries, every expiry's VolOracle entry (atm, skew, age -> stale
markup) and recorded settlement prices. Agreement rule as in
tests/differential/test_margin_mirror_vs_contract.py: MtM, H_IM and H_MM within 1e-9 relative
plus 1e-6 USD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from keeper import margin as km
from tests.deployment import MARGIN_PARAMS, WAD

REL_TOL = 1e-9
ABS_TOL_USD = 1e-6


PARAMS = MARGIN_PARAMS


@dataclass(frozen=True)
class MarketData:
    """What the margin model reads of the market at one point in time (all chain values)."""

    spot: int  # wad
    confidence: int  # wad
    now: int
    live_expiries: tuple[int, ...]
    entries: dict[int, tuple[int, int, int]]  # expiry -> (atm, skew, updated_at)
    settlement: dict[int, int]  # expiry -> settlement price (wad), recorded ones only
    vol_min: int
    vol_max: int
    vol_heartbeat: int
    stale_markup: int

    def to_mirror(self, held: set[int]) -> km.Market:
        """km.Market over the live expiries and those of held positions."""
        expiries = sorted(set(self.live_expiries) | held)
        atm, skew, markup, settle = [], [], [], []
        for e in expiries:
            entry = self.entries.get(e)
            live = e > self.now and entry is not None
            atm.append(entry[0] / WAD if live and entry else math.nan)
            skew.append(entry[1] / WAD if entry else 0.0)
            stale = live and entry is not None and self.now - entry[2] > self.vol_heartbeat
            markup.append(self.stale_markup / WAD if stale else 0.0)
            price = self.settlement.get(e)
            settle.append(price / WAD if price and e <= self.now else math.nan)
        return km.Market(
            spot=self.spot / WAD,
            confidence=self.confidence / WAD,
            now=self.now,
            expiries=np.array(expiries, dtype=np.int64),
            atm=np.array(atm),
            skew=np.array(skew),
            settlement=np.array(settle),
            vol_min=self.vol_min / WAD,
            vol_max=self.vol_max / WAD,
            stale_markup=np.array(markup),
        )


@dataclass(frozen=True)
class Book:
    """One account as the model sees it: cash (wad, signed), underlying (wad), positions
    (strike wad, expiry, is_call, signed size wad) and the perp's margin terms (size, last
    settled price, funding owed: wads, PerpBook.margin_terms)."""

    cash: int
    underlying: int
    positions: tuple[tuple[int, int, bool, int], ...]
    perp: tuple[int, int, int] = (0, 0, 0)


def evaluate(books: list[Book], market: MarketData) -> km.MarginResult:
    """keeper/margin.py's MtM, H_IM and H_MM of every book, in one vectorised call."""
    width = max([len(b.positions) for b in books] + [1])
    a = len(books)
    strike = np.ones((a, width))
    expiry = np.full((a, width), market.now, dtype=np.int64)
    is_call = np.ones((a, width), dtype=bool)
    size = np.zeros((a, width))
    held: set[int] = set()
    for i, b in enumerate(books):
        for j, (k, e, c, q) in enumerate(b.positions):
            strike[i, j], expiry[i, j], is_call[i, j], size[i, j] = k / WAD, e, c, q / WAD
            held.add(e)
    pf = km.Portfolios(
        cash=np.array([b.cash / WAD for b in books]),
        underlying=np.array([b.underlying / WAD for b in books]),
        strike=strike,
        expiry=expiry,
        is_call=is_call,
        size=size,
        perp_size=np.array([b.perp[0] / WAD for b in books]),
        perp_price=np.array([b.perp[1] / WAD for b in books]),
        perp_owed=np.array([b.perp[2] / WAD for b in books]),
    )
    return km.evaluate(pf, market.to_mirror(held), PARAMS)


def close(got_wad: int, expected: float) -> bool:
    """The agreement rule of docs/margin_model.md: 1e-9 relative plus 1e-6 USD."""
    return abs(got_wad / WAD - expected) <= REL_TOL * abs(expected) + ABS_TOL_USD
