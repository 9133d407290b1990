"""keeper/liquidation.py: which auctions to start, bid on and end; the bid's price limit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from keeper import margin as km
from keeper.liquidation import NO_WITNESS, plan_liquidations, price_limit
from tests.deployment import MARGIN_PARAMS


def test_start_bid_and_end_follow_health_and_open_auctions():
    health = np.array([-5.0, 10.0, -1.0, 3.0, -2.0])
    witness = np.array([4, 10, 7, 10, 2])
    is_open = np.array([False, False, True, True, False])
    plan = plan_liquidations(health, witness, is_open)
    assert plan.start.tolist() == [0, 4]
    assert plan.witnesses.tolist() == [4, 2]
    assert plan.bid.tolist() == [0, 2, 4]
    assert plan.end.tolist() == [3]


def test_auctions_stay_open_until_initial_margin_when_given():
    health = np.array([5.0, 5.0])
    is_open = np.array([True, True])
    plan = plan_liquidations(health, [0, 0], is_open, health_im=np.array([-1.0, 2.0]))
    assert plan.end.tolist() == [1]
    with pytest.raises(ValueError, match="health_im"):
        plan_liquidations(health, [0, 0], is_open, health_im=np.array([1.0]))


def test_protected_accounts_and_the_margin_are_respected():
    health = np.array([-5.0, -1e-4, -3.0])
    plan = plan_liquidations(
        health,
        np.zeros(3, dtype=np.int64),
        np.zeros(3, dtype=bool),
        protected=np.array([False, False, True]),
        margin=1e-3,
    )
    assert plan.start.tolist() == [0]
    assert plan.bid.tolist() == [0]


def test_inputs_must_align_and_be_finite():
    with pytest.raises(ValueError, match="aligned"):
        plan_liquidations([1.0, 2.0], [0], [False, False])
    with pytest.raises(ValueError, match="finite"):
        plan_liquidations([np.nan], [0], [False])
    with pytest.raises(ValueError, match="margin"):
        plan_liquidations([1.0], [0], [False], margin=-1.0)


def test_price_limit_pays_for_solvent_accounts_only():
    limits = price_limit([1000.0, -50.0, 0.0], [0.5, 1.0, 1.0], [0.1, 0.1, 0.1], tolerance=0.0)
    np.testing.assert_allclose(limits, [450.0, 0.0, 0.0])
    assert price_limit(1000.0, 1.0, 0.0, tolerance=0.01) == pytest.approx(1010.0)
    # The insurance fund's share of the discount is part of the bidder's outlay.
    assert price_limit(1000.0, 1.0, 0.1, fund_share=0.5, tolerance=0.0) == pytest.approx(950.0)
    with pytest.raises(ValueError, match="fractions"):
        price_limit(1.0, 1.5, 0.0)


def test_full_check_sentinel_is_max_uint256():
    assert NO_WITNESS == 2**256 - 1


def test_plan_on_a_real_margin_result():
    """A short put that a crash puts under water is started with its keeper.margin witness."""
    params = replace(MARGIN_PARAMS, ref_vol=0.8)
    now, expiry = 1_800_000_000, 1_800_000_000 + 10 * 86_400

    def market(spot: float) -> km.Market:
        return km.Market(spot, 1.0, now, [expiry], [0.7], [-0.1], [np.nan], 0.05, 5.0)

    books = km.Portfolios(
        cash=[2_000.0, 50_000.0],
        underlying=[0.0, 0.0],
        strike=[[2700.0], [2700.0]],
        expiry=[[expiry], [expiry]],
        is_call=[[False], [False]],
        size=[[-5.0], [-5.0]],
    )
    before = km.evaluate(books, market(3000.0), params)
    assert np.all(before.health_mm >= 0)
    after = km.evaluate(books, market(2500.0), params)
    plan = plan_liquidations(after.health_mm, after.witness_mm, np.zeros(2, dtype=bool))
    assert plan.start.tolist() == [0]
    # The witness is a scenario where the short put loses most: spot down.
    j, _ = km.scenario_of(int(plan.witnesses[0]), params.n)
    assert j < 0
