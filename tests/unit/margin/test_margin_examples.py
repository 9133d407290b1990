"""Worked margin examples: the engine against the hand check of tests/margin_reference.py.

Market: spot 3,000 from three agreeing feeds (confidence 1), one weekly expiry at 60% vol and no
skew (so every sigma and sigma_ref is 0.6), the IM/MM parameters of tests/protocol.py.
"""

from __future__ import annotations

import boa
import mpmath as mp
import pytest

from tests import margin_reference as ref
from tests import protocol as P  # noqa: N812

WAD = 10**18
E7 = P.expiry_in(8)


def mode(params: tuple[int, ...]) -> ref.Mode:
    return ref.Mode(*(x / WAD for x in params))


GRID = ref.Grid(P.GRID[0], P.GRID[1], *(x / WAD for x in P.GRID[2:]))


@pytest.fixture(scope="module")
def market():
    with boa.env.anchor():
        p = P.deploy()
        p.vol.update(E7, 6 * WAD // 10, 0)
        ids = {
            ("C", 3200): p.engine.list_series(E7, 3200 * WAD, True),
            ("P", 2800): p.engine.list_series(E7, 2800 * WAD, False),
        }
        dealer = P.Maker.new("dealer")
        p.fund(dealer.address, usd=10_000_000)
        yield p, ids, dealer


def trade(p, dealer, account, series_id, size, price):
    """The account buys (size > 0) or sells (size < 0) from the dealer at `price` per unit."""
    order = dealer.order(series_id, size < 0, abs(size) * WAD, price * WAD)
    with boa.env.prank(account):
        p.engine.fill(P.as_tuple(order), dealer.sign(p, order), abs(size) * WAD, account)


def check(p, account, options):
    now = boa.env.timestamp
    cash = mp.mpf(p.engine.cash(account)) / WAD
    underlying = mp.mpf(p.engine.underlying_balance(account)) / WAD
    mtm, h_im, h_mm = (mp.mpf(x) / WAD for x in p.engine.margin(account))
    exp_mtm = ref.mtm(cash, underlying, options, 3000, now)
    exp_im, w_im = ref.health(cash, underlying, options, 3000, 1, now, 0.6, mode(P.IM), GRID)
    exp_mm, w_mm = ref.health(cash, underlying, options, 3000, 1, now, 0.6, mode(P.MM), GRID)
    for got, exp in ((mtm, exp_mtm), (h_im, exp_im), (h_mm, exp_mm)):
        assert abs(got - exp) <= 1e-9 * abs(exp) + 1e-6, (got, exp)
    assert p.engine.health(account, True)[1] == w_im
    assert p.engine.health(account, False)[1] == w_mm
    return float(mtm), float(h_im), float(h_mm)


def test_cash_only(market):
    p, _, _ = market
    with boa.env.anchor():
        alice = boa.env.generate_address("alice")
        p.fund(alice, usd=2500)
        assert check(p, alice, []) == (2500.0, 2500.0, 2500.0)


def test_covered_call(market):
    p, ids, dealer = market
    with boa.env.anchor():
        alice = boa.env.generate_address("alice")
        p.fund(alice, usd=100, weth=1)
        trade(p, dealer, alice, ids[("C", 3200)], -1, 40)
        options = [ref.Option(3200, E7, True, -1, 0.6)]
        mtm, h_im, h_mm = check(p, alice, options)
        # Long one ETH, short one call: the worst scenario is the spot crash, where the call is
        # nearly worthless and the ETH is haircut: H_MM ~ 140 + 3000 (1 - u) (1 - 0.1) - A.
        assert 0 < h_im < h_mm < mtm


def test_short_strangle(market):
    p, ids, dealer = market
    with boa.env.anchor():
        alice = boa.env.generate_address("alice")
        p.fund(alice, usd=10_000)
        trade(p, dealer, alice, ids[("C", 3200)], -1, 40)
        trade(p, dealer, alice, ids[("P", 2800)], -1, 35)
        options = [ref.Option(3200, E7, True, -1, 0.6), ref.Option(2800, E7, False, -1, 0.6)]
        _, h_im, h_mm = check(p, alice, options)
        assert h_im < h_mm


def test_long_put_hedged_with_underlying(market):
    p, ids, dealer = market
    with boa.env.anchor():
        alice = boa.env.generate_address("alice")
        p.fund(alice, usd=500, weth=2)
        trade(p, dealer, alice, ids[("P", 2800)], 2, 35)
        options = [ref.Option(2800, E7, False, 2, 0.6)]
        _, _h_im, h_mm = check(p, alice, options)
        # The puts floor the crash scenarios: health stays well above zero.
        assert h_mm > 4000


def test_expired_unsettled_and_settled_positions(market):
    p, ids, dealer = market
    with boa.env.anchor():
        alice = boa.env.generate_address("alice")
        p.fund(alice, usd=5_000)
        trade(p, dealer, alice, ids[("C", 3200)], -1, 40)
        boa.env.time_travel(seconds=E7 - boa.env.timestamp + 60)
        p.set_spot(3300)
        options = [ref.Option(3200, E7, True, -1, 0.6)]
        # After expiry, before settlement: intrinsic at each shocked spot (no vol dependence;
        # no live expiry held, so sigma_ref is the configured floor).
        now = boa.env.timestamp
        cash = mp.mpf(p.engine.cash(alice)) / WAD
        h_mm = mp.mpf(p.engine.margin(alice)[2]) / WAD
        exp_mm, _ = ref.health(cash, 0, options, 3300, 1, now, P.REF_VOL / WAD, mode(P.MM), GRID)
        assert abs(h_mm - exp_mm) <= 1e-9 * abs(exp_mm) + 1e-6
        p.settle_expiry(E7)
        settled = [ref.Option(3200, E7, True, -1, 0.6, settlement=3300)]
        exp_mtm = ref.mtm(cash, 0, settled, 3300, now)
        assert abs(mp.mpf(p.engine.margin(alice)[0]) / WAD - exp_mtm) <= 1e-6
