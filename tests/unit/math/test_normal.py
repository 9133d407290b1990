"""normal.vy: exact values, symmetry, saturation of cdf and pdf (through PricingLens)."""

from __future__ import annotations

import pytest

from tests import mp_reference as ref

WAD = 10**18
INT_MAX = 2**255 - 1


def test_cdf_at_zero_is_one_half(lens):
    assert lens.cdf(0) == WAD // 2


def test_pdf_at_zero_is_inverse_sqrt_2pi(lens):
    assert lens.pdf(0) == 398942280401432678


@pytest.mark.parametrize("x", [WAD, 2 * WAD, 3 * WAD, 5 * WAD, WAD // 7, 8_999_999_999_999_999_999])
def test_cdf_symmetry_is_exact(lens, x):
    assert lens.cdf(x) + lens.cdf(-x) == WAD


@pytest.mark.parametrize("x", [1, 10**9, WAD, 2 * WAD, 6 * WAD, 8 * WAD, 9 * WAD - 1])
def test_cdf_and_pdf_known_points(lens, x):
    for point in (x, -x):
        assert abs(lens.cdf(point) - ref.cdf(point)) <= 3
        assert abs(lens.pdf(point) - ref.pdf(point)) <= 2


@pytest.mark.parametrize("x", [9 * WAD, 9 * WAD + 1, 40 * WAD, 10**40, INT_MAX])
def test_cdf_saturates_beyond_nine(lens, x):
    assert lens.cdf(x) == WAD
    assert lens.cdf(-x) == 0


def test_cdf_just_inside_saturation_is_continuous(lens):
    # 1 - Phi(9) = 1.13e-19: the last unsaturated value rounds to the saturated one.
    assert lens.cdf(9 * WAD - 1) == WAD
    assert lens.cdf(-(9 * WAD - 1)) == 0


@pytest.mark.parametrize("x", [10 * WAD + 1, 10**30, INT_MAX])
def test_pdf_is_zero_far_out(lens, x):
    assert lens.pdf(x) == 0
    assert lens.pdf(-x) == 0


def test_pdf_is_symmetric(lens):
    for x in (1, WAD // 3, 2 * WAD, 9 * WAD):
        assert lens.pdf(x) == lens.pdf(-x)


def test_pdf_underflows_only_where_the_density_is_below_half_a_wei(lens):
    assert lens.pdf(9 * WAD) == 1  # phi(9) = 1.03e-18
    assert lens.pdf(10 * WAD) == 0  # phi(10) = 7.7e-23
