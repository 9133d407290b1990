"""keeper/routing.py: the closed-form optimal split against a generic high-precision solver, KKT
conditions, quotes, the impact-budget inverse and order slicing."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from keeper.routing import (
    amount_out,
    amount_out_exact,
    marginal_prices,
    max_amount_for_impact,
    optimal_split,
    quote,
    slice_order,
    to_integer_amounts,
)
from tests.routing_reference import reference_split

X = np.array([100.0, 200.0, 50.0, 80.0])
Y = np.array([300_000.0, 610_000.0, 140_000.0, 236_000.0])
F = np.array([0.003, 0.003, 0.0005, 0.01])


def test_matches_generic_high_precision_solver():
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(1, 7))
        x = 10.0 ** rng.uniform(0, 4, n)
        y = x * 3000 * (1 + rng.uniform(-0.02, 0.02, n))
        fees = rng.choice([0.0, 0.0001, 0.003, 0.01], n)
        amount = float(x.sum() * 10.0 ** rng.uniform(-8, 0.5))
        ours = optimal_split(amount, x, y, fees)
        ref = np.array([float(v) for v in reference_split(amount, x, y, fees)])
        # Legs agree to float precision of the order size: a leg just past its activation
        # threshold is A - T_k in disguise, so its absolute error is a few hundred ulps of A
        # (the problem's own conditioning), never an error relative to the reserves.
        assert np.allclose(ours, ref, rtol=1e-14, atol=5e-13 * amount)
        assert ours.sum() == pytest.approx(amount, rel=4e-16)
        assert np.all((ours == 0) == (ref == 0))  # the same active set


def test_kkt_conditions():
    for amount in (0.01, 1.0, 10.0, 100.0, 1_000.0):
        a = optimal_split(amount, X, Y, F)
        g = 1 - F
        marginal_after = g * X * Y / (X + g * a) ** 2
        active = a > 0
        level = marginal_after[active]
        assert np.allclose(level, level[0], rtol=1e-12)
        # Pools left out start at or below the common level.
        assert np.all(marginal_prices(X, Y, F)[~active] <= level[0] * (1 + 1e-12))


def test_active_set_grows_with_size():
    counts = [int(np.count_nonzero(optimal_split(a, X, Y, F))) for a in (0.001, 10, 1000)]
    assert counts == [1, 3, 4]  # marginal prices 3040.9, 2991.0, 2920.5, 2798.6
    # The best initial marginal price takes a tiny order alone.
    assert np.argmax(optimal_split(0.001, X, Y, F)) == np.argmax(marginal_prices(X, Y, F))


def test_edge_cases():
    assert np.array_equal(optimal_split(0.0, X, Y, F), np.zeros(4))
    assert np.array_equal(optimal_split(5.0, X[:1], Y[:1], F[:1]), np.array([5.0]))
    # Identical pools share equally; an empty pool gets nothing.
    a = optimal_split(9.0, [10.0, 10.0, 10.0, 0.0], [30.0, 30.0, 30.0, 0.0], 0.003)
    assert np.allclose(a, [3.0, 3.0, 3.0, 0.0], rtol=1e-14)
    with pytest.raises(ValueError, match="no pool has liquidity"):
        optimal_split(1.0, [0.0, 5.0], [1.0, 0.0], 0.0)
    with pytest.raises(ValueError, match="fees"):
        optimal_split(1.0, X, Y, 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        optimal_split(1.0, -X, Y, F)
    with pytest.raises(ValueError, match="amount_in"):
        optimal_split(-1.0, X, Y, F)
    with pytest.raises(ValueError, match="pool axis"):
        optimal_split(1.0, 1.0, 1.0, 0.0)


def test_batched_equals_one_by_one():
    amounts = np.array([0.5, 5.0, 50.0, 500.0])
    xs = np.stack([X, X * 2, X[::-1], X])
    ys = np.stack([Y, Y, Y[::-1], Y * 0.5])
    batch = optimal_split(amounts, xs, ys, F)
    assert batch.shape == (4, 4)
    for i in range(4):
        assert np.array_equal(batch[i], optimal_split(amounts[i], xs[i], ys[i], F))


def test_quote_single_pool_closed_form():
    x, y, f, a = 100.0, 300_000.0, 0.003, 7.0
    g = 1 - f
    q = quote([a], [x], [y], [f])
    assert q.amount_out == pytest.approx(y * g * a / (x + g * a), rel=1e-15)
    assert q.average_price == pytest.approx(g * y / (x + g * a), rel=1e-15)
    assert q.price_impact == pytest.approx(g * a / (x + g * a), rel=1e-13)
    zero = quote([0.0], [x], [y], [f])
    assert (zero.amount_out, zero.price_impact) == (0.0, 0.0)
    assert zero.average_price == pytest.approx(g * y / x, rel=1e-15)


def test_quote_matches_contract_rounding():
    """The float quote is the contract's integer output up to the per-leg floor (< 1 unit)."""
    x, y = [10**20, 3 * 10**20], [3 * 10**11, 9 * 10**11]
    legs = to_integer_amounts(optimal_split(5 * 10**19, x, y, [0.003, 0.0005]), 5 * 10**19)
    assert sum(legs) == 5 * 10**19
    exact = sum(
        amount_out_exact(a, xi, yi, fee) for a, xi, yi, fee in zip(legs, x, y, [30, 5], strict=True)
    )
    q = quote(legs, x, y, [0.003, 0.0005])
    assert 0 <= q.amount_out - exact < 2 + 1e-12 * exact


def test_max_amount_for_impact_inverts_quote():
    for budget in (1e-5, 1e-3, 0.01, 0.1, 0.5):
        cap = float(max_amount_for_impact(X, Y, F, budget))
        impact = quote(optimal_split(cap, X, Y, F), X, Y, F).price_impact
        # quote() computes 1 - avg/p_ref in floats: an absolute error of a few ulps.
        assert impact == pytest.approx(budget, rel=1e-13, abs=1e-15)
    assert float(max_amount_for_impact(X, Y, F, 0.0)) == 0.0
    # Batched budgets are increasing in the budget.
    caps = max_amount_for_impact(X, Y, F, np.array([0.001, 0.01, 0.1]))
    assert np.all(np.diff(caps) > 0)
    with pytest.raises(ValueError, match="max_impact"):
        max_amount_for_impact(X, Y, F, 1.0)


def test_max_amount_for_impact_against_bisection():
    """Independent check: bisection on the amount with quote() in mpmath-free floats."""
    budget = 0.02
    lo, hi = 0.0, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        if quote(optimal_split(mid, X, Y, F), X, Y, F).price_impact <= budget:
            lo = mid
        else:
            hi = mid
    # The bisection's own resolution: impact is flat to ~1e-16 around the cap.
    assert float(max_amount_for_impact(X, Y, F, budget)) == pytest.approx(lo, rel=1e-12)


def test_slice_order():
    budget = 0.01
    cap = float(max_amount_for_impact(X, Y, F, budget))
    parts = slice_order(10 * cap + 1.0, X, Y, F, budget)
    assert len(parts) == 11  # the fewest parts of size <= cap
    assert parts.sum() == pytest.approx(10 * cap + 1.0, rel=1e-15)
    assert np.ptp(parts) <= 1e-9 * parts[0]
    for part in parts:
        assert quote(optimal_split(part, X, Y, F), X, Y, F).price_impact <= budget * (1 + 1e-12)
    assert np.array_equal(slice_order(cap / 2, X, Y, F, budget), np.array([cap / 2]))
    with pytest.raises(ValueError, match="max_blocks"):
        slice_order(10 * cap + 1.0, X, Y, F, budget, max_blocks=10)
    with pytest.raises(ValueError, match="max_impact"):
        slice_order(1.0, X, Y, F, 0.0)
    with pytest.raises(ValueError, match="1-D"):
        slice_order(1.0, X[None, :], Y[None, :], F, budget)


def test_amount_out_vectorized():
    a = np.array([1.0, 0.0, 2.0, 3.0])
    out = amount_out(a, X, Y, F)
    g = 1 - F
    assert np.allclose(out, Y * g * a / (X + g * a), rtol=1e-15)
    with pytest.raises(ValueError, match="amounts"):
        amount_out(-a, X, Y, F)


def test_to_integer_amounts():
    legs = to_integer_amounts([1.6, 2.5, 0.0, 5.9], 10)
    assert legs == [1, 2, 0, 7]
    with pytest.raises(ValueError, match="empty"):
        to_integer_amounts([], 1)


def test_reference_solver_is_accurate():
    """The generic solver itself, against the closed form evaluated in mpmath."""
    with mp.workdps(50):
        ref = reference_split(10.0, X, Y, F)
        # The common marginal level of the active legs, equal to 40 digits.
        g = [1 - mp.mpf(f) for f in F]
        levels = [g[i] * X[i] * Y[i] / (X[i] + g[i] * ref[i]) ** 2 for i in range(4) if ref[i] > 0]
        assert max(levels) - min(levels) < mp.mpf(10) ** -35 * levels[0]
        assert abs(mp.fsum(ref) - 10) < mp.mpf(10) ** -35
