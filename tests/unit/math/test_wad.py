"""wad.vy: edge cases and exact values of exp_wad, ln_wad and sqrt_wad (through PricingLens)."""

from __future__ import annotations

import boa
import pytest

from tests import mp_reference as ref

WAD = 10**18
EXP_MIN = -42139678854452767622
EXP_MAX = 135305999368893231589
INT_MAX = 2**255 - 1
SQRT_MAX = (2**256 - 1) // WAD


def test_exp_of_zero_is_one(lens):
    assert lens.exp_wad(0) == WAD


@pytest.mark.parametrize("x", [WAD, -WAD, 10 * WAD, -10 * WAD, 1, -1, WAD // 3])
def test_exp_known_points_rounded_to_nearest(lens, x):
    assert abs(lens.exp_wad(x) - ref.exp(x)) <= 0.5 + ref.exp(x) * 1e-18


def test_exp_underflows_to_zero_below_half_a_wei(lens):
    assert lens.exp_wad(EXP_MIN - 1) == 0
    assert lens.exp_wad(-(10**40)) == 0
    assert lens.exp_wad(-INT_MAX) == 0
    # Just above the threshold the exact value is 0.5 wei: rounding gives 0 or 1.
    assert lens.exp_wad(EXP_MIN + 1) in (0, 1)
    assert lens.exp_wad(EXP_MIN + 10**18) == 1  # e^1 * 0.5 = 1.36 wei


def test_exp_largest_input_fits(lens):
    got = lens.exp_wad(EXP_MAX)
    assert 0 < got <= INT_MAX
    assert abs(got - ref.exp(EXP_MAX)) <= ref.exp(EXP_MAX) * 1e-18


@pytest.mark.parametrize("x", [EXP_MAX + 1, 136 * WAD, INT_MAX])
def test_exp_overflow_reverts(lens, x):
    with boa.reverts("wad: exp overflow"):
        lens.exp_wad(x)


def test_ln_of_one_is_zero(lens):
    assert lens.ln_wad(WAD) == 0


@pytest.mark.parametrize("x", [0, -1, -WAD, -INT_MAX])
def test_ln_of_non_positive_reverts(lens, x):
    with boa.reverts("wad: ln of non-positive"):
        lens.ln_wad(x)


@pytest.mark.parametrize("x", [1, 2, WAD - 1, WAD + 1, 2 * WAD, 10**36, INT_MAX, 2**96, 2**96 - 1])
def test_ln_extremes_within_half_wei(lens, x):
    assert abs(lens.ln_wad(x) - ref.ln(x)) <= 0.6


def test_ln_inverts_exp(lens):
    for x in (-40 * WAD, -WAD, 12345678901234567, 100 * WAD):
        assert abs(lens.ln_wad(lens.exp_wad(x)) - x) <= 2 + abs(x) * 1e-17 + 10**18 // lens.exp_wad(
            x
        )


@pytest.mark.parametrize("x", [0, 1, 2, 3, 4, WAD, 2 * WAD, 10**20, SQRT_MAX, SQRT_MAX - 1])
def test_sqrt_is_exact_floor(lens, x):
    assert lens.sqrt_wad(x) == ref.sqrt(x)


def test_sqrt_perfect_squares_and_neighbours(lens):
    # x * 1e18 == r^2 exactly for x = n^2 * 1e18 (r = n * 1e18): the root is exact, one wei
    # less drops it to the floor below.
    for n in (1, 2, 7, 10**9, 3 * 10**15):
        x = n * n * WAD
        assert lens.sqrt_wad(x) == n * WAD
        assert lens.sqrt_wad(x - 1) == n * WAD - 1
        assert lens.sqrt_wad(x + 1) == n * WAD


def test_sqrt_overflow_reverts(lens):
    with boa.reverts("wad: sqrt overflow"):
        lens.sqrt_wad(SQRT_MAX + 1)
    with boa.reverts("wad: sqrt overflow"):
        lens.sqrt_wad(2**256 - 1)
