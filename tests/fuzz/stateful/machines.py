"""The machines: the main one over the whole protocol and narrower ones built on the same base.

Each is KappaMachine (the ghost model and every property) plus rule mixins; the pytest modules
in this folder run them (`Test... = Machine.TestCase`) with `machine_settings`.
"""

from __future__ import annotations

from hypothesis import Phase, settings

from tests.fuzz.stateful.coalition import CoalitionRules
from tests.fuzz.stateful.perp import PerpMachine
from tests.fuzz.stateful.rules import (
    AdminRules,
    CollateralRules,
    HedgeRules,
    LiquidationRules,
    MarketRules,
    OrderRules,
    PerpRules,
    SettlementRules,
    StressRules,
    TimeRules,
    TradingRules,
)


class ProtocolMachine(
    CollateralRules,
    OrderRules,
    PerpRules,
    HedgeRules,
    MarketRules,
    SettlementRules,
    AdminRules,
    LiquidationRules,
):
    """The main machine: every action on the whole protocol (engine, liquidator, oracle and vol
    oracle, pools and router), four traders, an operator, an outsider and a backstop bidder;
    portfolios up to 8 positions over several expiries, calls and puts, and the perp."""


class CollateralMachine(CollateralRules, HedgeRules, MarketRules, AdminRules):
    """Collateral only (no options): deposits, withdrawals, round trips, exits and hedge swaps
    under price moves, stale sources, pauses and sequencer outages."""


class TradingMachine(
    CollateralRules, OrderRules, PerpRules, TimeRules, SettlementRules, AdminRules
):
    """Orders, fills (options and the perp), cancels, operators and intruders, through expiry
    and settlement, with the oracle fixed (only time moves: funding accrues)."""


class MirrorMachine(TradingRules, PerpRules, MarketRules, SettlementRules):
    """keeper/margin.py against the contract on every visited state: every account's health is
    read (and mirrored) after every step, through fills, price and vol moves and expiries."""

    health_every_step = True


class LiquidationMachine(
    TradingRules, PerpRules, MarketRules, StressRules, SettlementRules, LiquidationRules
):
    """Trading into crashes, then auctions, bids (partial, whole, insolvent), their end and the
    insurance fund; loss socialization when the fund runs dry."""


class CoalitionMachine(CoalitionRules, OrderRules, PerpRules, CollateralRules):
    """One party controls every trader (and their operator) on a market that never moves: it
    trades options at any price and the perp at any price the band allows, levers up, sells
    back, settles, auctions and bids for its own accounts. Its value must not grow; the
    insurance fund and the saver must not lose."""


ALL_MACHINES: list[type] = [
    ProtocolMachine,
    PerpMachine,
    CollateralMachine,
    TradingMachine,
    MirrorMachine,
    LiquidationMachine,
    CoalitionMachine,
]

# (examples, steps per example) of each machine under the ci profile: at most 6,250 steps in
# all (about 5,400 run: Hypothesis ends some examples early), a minute on two busy cores. quick
# runs 10 examples each; deep multiplies the examples by KAPPA_FUZZ_SCALE (default 20: about
# 110,000 steps). See tests/conftest.py `scaled`.
BUDGETS: dict[str, tuple[int, int]] = {
    "ProtocolMachine": (60, 50),
    "CollateralMachine": (15, 40),
    "TradingMachine": (20, 50),
    "MirrorMachine": (10, 40),
    "LiquidationMachine": (25, 50),
    "CoalitionMachine": (25, 50),
    "PerpMachine": (60, 50),
}


def machine_settings(name: str) -> settings:
    """Hypothesis settings of a machine under the active profile: its example budget scaled,
    no shrinking (an EVM machine's shrink replays hundreds of steps per attempt; the failing
    sequence is printed in full instead), no deadline."""
    from tests.conftest import scaled

    examples, steps = BUDGETS[name]
    return settings(
        max_examples=scaled(examples),
        stateful_step_count=steps,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target),
        deadline=None,
    )
