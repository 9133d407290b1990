"""Signed perp quotes the hedger may take (pure: parsing and validation, no chain I/O).

A perp liquidity account publishes its resting quotes as signed orders (the engine's EIP-712
`Order` with `series_id = keeper.series.PERP_ID`, signed for the OrderBook): a JSON list of
`{"order": {maker, series_id, is_buy, size, price, nonce, deadline}, "signature": "0x..."}`
(integers as JSON numbers or decimal strings). The hedger reads the file every block
(`hedge.perp_quotes`), keeps the quotes that are live (deadline at or after the block time)
and takes one, whole or in part, when the perp is the cheaper venue (keeper.hedging.hedge_venue).
Whether a quote is still fillable (cancelled, already filled) is the engine's to say: every
action is simulated before it is sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keeper.hedging import PerpQuotes
from keeper.orders import ORDER_FIELDS
from keeper.series import PERP_ID

WAD = 10**18


class QuoteError(ValueError):
    """A quotes file that cannot be used (one-line message)."""


@dataclass(frozen=True)
class SignedQuote:
    """One signed perp order: the maker buys (`is_buy`, a bid) or sells `size` at `price`."""

    order: dict[str, Any]
    signature: bytes

    @property
    def is_bid(self) -> bool:
        return bool(self.order["is_buy"])


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise QuoteError(f"{where}: expected an integer")
    try:
        out = int(value)
    except ValueError:
        raise QuoteError(f"{where}: expected an integer, got {value!r}") from None
    if out < 0:
        raise QuoteError(f"{where}: must be >= 0")
    return out


def parse_quotes(data: Any, source: str = "quotes") -> list[SignedQuote]:
    """The quotes of a decoded JSON document (see the module); QuoteError on bad input."""
    if not isinstance(data, list):
        raise QuoteError(f"{source}: expected a list of quotes")
    out = []
    for k, item in enumerate(data):
        where = f"{source}[{k}]"
        if not isinstance(item, dict) or not isinstance(item.get("order"), dict):
            raise QuoteError(f"{where}: expected {{order: {{...}}, signature: 0x...}}")
        raw = item["order"]
        missing = [f for f in ORDER_FIELDS if f not in raw]
        if missing:
            raise QuoteError(f"{where}.order: missing {missing[0]}")
        order: dict[str, Any] = {}
        for f in ORDER_FIELDS:
            if f == "maker":
                order[f] = str(raw[f])
            elif f == "is_buy":
                if not isinstance(raw[f], bool):
                    raise QuoteError(f"{where}.order.is_buy: expected true or false")
                order[f] = raw[f]
            else:
                order[f] = _int(raw[f], f"{where}.order.{f}")
        if order["series_id"] != PERP_ID:
            raise QuoteError(f"{where}.order.series_id: not the perp's id")
        signature = str(item.get("signature", ""))
        try:
            sig = bytes.fromhex(signature.removeprefix("0x"))
        except ValueError:
            raise QuoteError(f"{where}.signature: not hex") from None
        if len(sig) != 65:
            raise QuoteError(f"{where}.signature: expected 65 bytes")
        out.append(SignedQuote(order, sig))
    return out


def load_quotes(path: Path) -> list[SignedQuote]:
    """The quotes in a JSON file; an absent file is no quotes (the quoter has not started)."""
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise QuoteError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return parse_quotes(data, str(path))


def live(quotes: Sequence[SignedQuote], now: int, excluded: set[str]) -> list[SignedQuote]:
    """The quotes still valid at block time `now`, not made by an `excluded` account (a hedged
    account cannot take its own quote: the engine refuses a self trade)."""
    return [
        q
        for q in quotes
        if q.order["deadline"] >= now
        and q.order["size"] > 0
        and q.order["maker"].lower() not in excluded
    ]


def quote_arrays(quotes: Sequence[SignedQuote], remaining: Sequence[int]) -> PerpQuotes:
    """The quotes as keeper.hedging.PerpQuotes (USD per unit, units), with `remaining` the
    size (wad) still available of each in this block."""
    return PerpQuotes(
        price=np.array([q.order["price"] / WAD for q in quotes], dtype=np.float64),
        size=np.array([r / WAD for r in remaining], dtype=np.float64),
        is_bid=np.array([q.is_bid for q in quotes], dtype=bool),
    )
