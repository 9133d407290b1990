"""The golden perp sequence: random fills between four accounts (two of them one owner's, who
also wash-trades), time passing, index moves, settlements and parameter changes, with what
keeper/perp.py says the market and every account hold after each step (the market's two
words, each position's two words, each account's cash). `tests/unit/margin/test_perp_book.py`
replays it through contracts/margin/PerpBook.vy, compares every word to the wei, and checks
that keeper/perp.py still produces this file.

Regenerate (only when the rules change, and say why in the commit):
    .venv/bin/python -m tests.unit.margin.golden_perp
which writes tests/unit/margin/golden_perp.json (seeded: the same file every time).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from keeper.perp import WAD, PerpBook, PerpError, PerpParams, new_market, pack_market, pack_position

PATH = Path(__file__).with_name("golden_perp.json")
SEED = 25
STEPS = 200
START = 1_800_000_000
ACCOUNTS = ("a0", "a1", "w0", "w1")  # w0 and w1: one owner's two accounts (wash trades)
PARAMS = (
    PerpParams(band=5 * 10**16, half_life=900, convergence_hours=8, max_rate=10**15),
    PerpParams(band=2 * 10**16, half_life=60, convergence_hours=1, max_rate=10**16),
    PerpParams(band=2 * 10**17, half_life=86_400, convergence_hours=168, max_rate=0),
    PerpParams(band=10**15, half_life=3_600, convergence_hours=24, max_rate=5 * 10**14),
)


def state(book: PerpBook) -> dict[str, Any]:
    """Everything the test compares after a step (words as decimal strings)."""
    return {
        "market": [str(w) for w in pack_market(book.market)],
        "positions": {
            a: [str(w) for w in pack_position(book.positions[a])]
            if a in book.positions
            else ["0", "0"]
            for a in ACCOUNTS
        },
        "cash": {a: str(book.cash.get(a, 0)) for a in ACCOUNTS},
    }


def generate(seed: int = SEED, steps: int = STEPS) -> dict[str, Any]:
    rng = random.Random(seed)
    now = START
    spot = 2_000 * WAD
    book = PerpBook(new_market(PARAMS[0], now))
    out: list[dict[str, Any]] = []
    for _ in range(steps):
        kind = rng.choices(
            ("fill", "wash", "time", "spot", "settle", "params"), (8, 2, 5, 3, 4, 1)
        )[0]
        step: dict[str, Any] = {"kind": kind}
        try:
            if kind == "time":
                step["seconds"] = rng.choice((1, 12, 60, 600, 3_600, 86_400, 7 * 86_400))
                now += step["seconds"]
            elif kind == "spot":
                spot = max(1, spot * rng.randint(900_000, 1_100_000) // 1_000_000)
            elif kind in ("fill", "wash"):
                buyer, seller = rng.sample(ACCOUNTS[2:] if kind == "wash" else ACCOUNTS, 2)
                band = book.market.params.band
                # Mostly inside the band, sometimes just outside (the contract reverts).
                edge = rng.choice((-1, 1)) * band * spot // WAD
                price = rng.choice(
                    (
                        spot + rng.randint(-abs(edge), abs(edge)),
                        spot + edge,
                        spot + edge + (1 if edge > 0 else -1),
                    )
                )
                size = rng.randint(1, 50 * WAD)
                step.update(buyer=buyer, seller=seller, size=str(size), price=str(price))
                book.fill(buyer, seller, size, price, spot, now)
            elif kind == "settle":
                step["account"] = rng.choice(ACCOUNTS)
                step["amount"] = str(book.settle(step["account"], spot, now))
            else:
                step["params"] = rng.randrange(len(PARAMS))
                book.set_params(PARAMS[step["params"]], spot, now)
        except PerpError as exc:
            step["revert"] = str(exc)
        step["now"] = now
        step["spot"] = str(spot)
        step["state"] = state(book)
        out.append(step)
    # Everyone settles at the end: the sum of all cash is the protocol's rounding (<= 0).
    for account in ACCOUNTS:
        book.settle(account, spot, now)
    out.append({"kind": "settle_all", "now": now, "spot": str(spot), "state": state(book)})
    return {
        "seed": seed,
        "start": START,
        "accounts": list(ACCOUNTS),
        "params": [[p.band, p.half_life, p.convergence_hours, p.max_rate] for p in PARAMS],
        "steps": out,
    }


def main() -> None:
    data = generate()
    steps = data.pop("steps")
    head = json.dumps(data, separators=(",", ":"))[:-1]
    body = ",\n".join(json.dumps(step, separators=(",", ":")) for step in steps)
    PATH.write_text(f'{head},"steps":[\n{body}\n]}}\n')
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
