"""Gas of contracts/margin/PerpBook.vy's calls, the perp's share of a future perp fill (the
engine's order checks, cash and margin check come on top): `trade` between two accounts that
both hold a position (funding accrued, the mark moved, both settled and resized: six storage
words), `settle` of one account (and of one without a position, which the engine will do for every
account it touches), `move` of half a position to an account without one (a
liquidation's bidder: its two words go from zero to nonzero), and the margin view
`margin_terms`. The market is warmed up first, so that the measured words are already nonzero.

The engine is tests/contracts/PerpEngineStub.vy (PerpBook only reads its risk admin and, for
parameter changes, its oracle); every call is priced as the first call of a transaction
(`bench.common.execution_gas`: cold accounts and slots).
"""

from __future__ import annotations

import boa

from bench.common import execution_gas
from bench.common import load as _load

WAD = 10**18
S = 2_000 * WAD


def measure() -> dict[str, int]:
    with boa.swap_env(boa.Env()):
        engine = _load("tests/contracts/PerpEngineStub.vy")
        book = _load("contracts/margin/PerpBook.vy", engine.address)
        book.list_perp(5 * 10**16, 900, 8, 10**15)
        a, b, c = (boa.env.generate_address(f"perp gas {i}") for i in range(3))
        with boa.env.prank(engine.address):
            # Warm-up: the first fill (at listing time) weighs nothing, the second sets a
            # premium, the third accrues funding from it: after it every word of the market and
            # of both positions is nonzero (the steady state of a live market).
            for _ in range(3):
                book.trade(a, b, 5 * WAD, S + WAD, S)
                boa.env.time_travel(seconds=600)
            out = {"perp_book_trade": execution_gas(book, "trade", a, b, WAD, S + WAD, S)}
            boa.env.time_travel(seconds=600)
            out["perp_book_settle"] = execution_gas(book, "settle", a, S)
            out["perp_book_settle_flat"] = execution_gas(book, "settle", c, S)
            boa.env.time_travel(seconds=600)
            out["perp_book_move"] = execution_gas(book, "move", a, c, WAD // 2, S)
        boa.env.time_travel(seconds=600)
        out["perp_book_margin_terms"] = execution_gas(book, "margin_terms", b, S)
        return out
