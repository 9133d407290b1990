"""The one place where protocol gas figures are measured: writes bench/results/gas.json.

Each entry is the execution gas of one call (bench.common.execution_gas: the call frame with
cold access sets, without the 21,000 intrinsic gas and calldata), next to its goal from the
issues where one is set. The measurements of each layer live beside this file
(bench/gas_oracle.py, bench/gas_venues.py, bench/gas_engine.py,
bench/gas_liquidation.py, bench/gas_perp.py); this module runs them all
and is what `make bench` calls. Run alone with `python -m bench.gas`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import boa

from bench.common import execution_gas, load, table, write_result

WAD = 10**18
COMMAND = "make bench  (python -m bench.gas)"

# Goals from the issues (gas <= goal). Keys without a goal are measured for the record.
GOALS: dict[str, int | None] = {
    "lens_price": None,
    "lens_greeks": None,
    "oracle_price_3": 40_000,
    "vol_sigma": None,
    "oracle_settlement_price_3": None,
    "settle_expiry": None,
    "pool_swap": None,
    "swap_split_3": 250_000,
    "twap_feed_read": None,
    "health_full_16x21": 1_200_000,
    "health_witness_16": 120_000,
    # A well-funded fill, passed by the health floor (the margin-rule soundness issue's goal).
    "fill_16": 600_000,
    # The same fill between thinly funded accounts: the health floor fails, the grid runs.
    "fill_16_full": 2_600_000,
    "deposit": None,
    "withdraw": None,
    "withdraw_full": None,
    "engine_swap_3": None,
    "start_auction_witness": 250_000,
    "start_auction_full": None,
    "bid_16": 2_000_000,
    # The same bid by a thinly funded bidder: its IM check runs the full grid.
    "bid_16_full": 2_000_000,
    # The first cash touch of a block: the interest accrual (issue #23).
    "accrue": 10_000,
    # Perps through the engine (issue #25): 16 options and a perp, full check; a perp fill
    # between two 16-position accounts passed by the health floor; one settlement.
    "health_full_16x21_perp": 1_000_000,
    "perp_fill_16": 450_000,
    "settle_perp": None,
    # contracts/margin/PerpBook.vy's share of a perp fill, settlement, liquidation move, margin
    # read.
    "perp_book_trade": None,
    "perp_book_settle": None,
    "perp_book_settle_flat": None,
    "perp_book_move": None,
    "perp_book_margin_terms": None,
}

# Layers that contribute measurements: module name -> function returning {key: gas}.
LAYERS = (
    "bench.gas_oracle",
    "bench.gas_venues",
    "bench.gas_engine",
    "bench.gas_liquidation",
    "bench.gas_perp",
)


def measure_lens() -> dict[str, int]:
    """PricingLens.price and .greeks on an at-the-money-ish ETH option (external view calls)."""
    with boa.swap_env(boa.Env()):
        lens = load("tests/contracts/PricingLens.vy")
        args = (3000 * WAD, 3200 * WAD, WAD // 4, 6 * WAD // 10, True)
        return {
            "lens_price": execution_gas(lens, "price", *args),
            "lens_greeks": execution_gas(lens, "greeks", *args),
        }


def _sources() -> list[Callable[[], dict[str, int]]]:
    sources: list[Callable[[], dict[str, int]]] = [measure_lens]
    for name in LAYERS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        sources.append(module.measure)
    return sources


def main() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for source in _sources():
        for key, gas in source().items():
            goal = GOALS.get(key)
            figures[key] = {
                "gas": gas,
                "goal": goal,
                "meets_goal": None if goal is None else gas <= goal,
            }
    rows = [
        (
            k,
            v["gas"],
            v["goal"],
            "yes" if v["meets_goal"] else ("-" if v["meets_goal"] is None else "NO"),
        )
        for k, v in figures.items()
    ]
    print(table(("action", "gas", "goal", "meets goal"), rows))
    path = write_result("gas", {"gas": figures}, COMMAND)
    print(f"wrote {path.relative_to(path.parents[2])}")
    return figures


if __name__ == "__main__":
    main()
