"""The perp through the MarginEngine: fills with signed orders, `settle_perp`, the margin terms,
withdrawals and liquidation moves (PerpBook's own rules: test_perp_book.py, test_perp.py).

Every test name contains "perp" (`pytest -k perp`). Exact values come from keeper/perp.py, the
rules' integer twin, and from the margin model's formulas (docs/margin_model.md).
"""

from __future__ import annotations

import boa
import pytest

from keeper import perp as kp
from keeper.series import PERP_ID
from tests import protocol as P  # noqa: N812
from tests.conftest import events

WAD = 10**18
SPOT = 3000 * WAD
NO_WITNESS = 2**256 - 1

pytestmark = pytest.mark.usefixtures("isolate")


def addr(name: str) -> str:
    return boa.env.generate_address(name)


def perp_fill(proto, maker, taker, is_buy, size, price, caller=None):
    """The maker buys (is_buy) or sells `size` perps at `price` against the taker."""
    order = maker.order(PERP_ID, is_buy, size, price)
    with boa.env.prank(caller or taker):
        proto.engine.fill(P.as_tuple(order), maker.sign(proto, order), size, taker)
    return order


@pytest.fixture
def pair(proto):
    """A funded market maker and a funded taker."""
    maker, taker = P.Maker.new("perp maker"), addr("perp taker")
    proto.fund(maker.address, usd=50_000)
    proto.fund(taker, usd=50_000)
    return maker, taker


def position(proto, account):
    return tuple(proto.perp_book.position(account))


def twin_market(proto) -> kp.Market:
    """The book's stored market through the twin's decoder."""
    return kp.unpack_market((proto.perp_book.market_words(0), proto.perp_book.market_words(1)))


def test_perp_fill_settles_the_payment_into_both_cash_balances(proto, pair):
    maker, taker = pair
    # The maker buys 2 perps at 3,010 with the index at 3,000: it pays 2 * 10 to the taker.
    perp_fill(proto, maker, taker, True, 2 * WAD, 3010 * WAD)
    now = boa.env.timestamp
    logs = events(proto.engine)
    (fill,) = [e for e in logs if e[0] == "Fill"]
    assert fill[1]["series_id"] == PERP_ID and fill[1]["premium"] == 0
    (book_fill,) = [e for e in logs if e[0] == "PerpFill"]
    assert position(proto, maker.address) == (2 * WAD, SPOT, 0)
    assert position(proto, taker) == (-2 * WAD, SPOT, 0)
    assert proto.engine.cash(maker.address) == (50_000 - 20) * WAD
    assert proto.engine.cash(taker) == (50_000 + 20) * WAD
    assert proto.perp_book.open_interest() == 2 * WAD
    assert book_fill[1] == {
        "buyer": maker.address,
        "seller": taker,
        "size": 2 * WAD,
        "price": 3010 * WAD,
        "spot": SPOT,
        "time": now,
        "buyer_cash": -20 * WAD,
        "seller_cash": 20 * WAD,
    }


def test_perp_fill_outside_the_band_reverts_for_every_caller(proto, pair):
    maker, taker = pair
    # The band is 2% of the index: 3,060 is its edge, one wei more is outside.
    with boa.reverts("engine: perp price outside band"):
        perp_fill(proto, maker, taker, True, WAD, 3060 * WAD + 1)
    perp_fill(proto, maker, taker, True, WAD, 3060 * WAD)


def test_perp_fill_needs_initial_margin(proto):
    maker, taker = P.Maker.new("perp maker"), addr("broke taker")
    proto.fund(maker.address, usd=50_000)
    proto.fund(taker, usd=100)
    # 10 perps at 3,000 carry a 2.5% IM contingency alone: 750 USD against 100.
    with boa.reverts("engine: below initial margin"):
        perp_fill(proto, maker, taker, True, 10 * WAD, SPOT)


def test_perp_margin_counts_price_pnl_and_funding(proto, pair):
    maker, taker = pair
    # A fill at the listing's timestamp weighs nothing in the mark: trade an hour later.
    boa.env.time_travel(seconds=3600)
    proto.set_spot(3000)
    perp_fill(proto, maker, taker, True, 2 * WAD, 3030 * WAD)  # premium 1%: longs will pay
    market = twin_market(proto)
    assert market.premium > 0
    boa.env.time_travel(seconds=3600)
    proto.set_spot(3100)
    spot = 3100 * WAD
    index = kp.index_at(market, spot, boa.env.timestamp)
    owed = kp.funding_owed(kp.Position(2 * WAD, SPOT, market.index), index)
    assert owed > 0
    assert tuple(proto.perp_book.margin_terms(maker.address, spot)) == (2 * WAD, SPOT, owed)
    portfolio, _ = proto.engine.risk_inputs(maker.address)
    assert tuple(portfolio[3]) == (2 * WAD, SPOT, owed)
    mtm, _, _ = proto.engine.margin(maker.address)
    # Cash after paying 2 * 30, plus 2 * (3,100 - 3,000), less the funding owed.
    assert mtm == (50_000 - 60) * WAD + 200 * WAD - owed
    delta, _, _, _ = proto.engine.account_greeks(maker.address)
    assert delta == 2 * WAD


def test_settle_perp_moves_the_unsettled_value_into_cash(proto, pair):
    maker, taker = pair
    boa.env.time_travel(seconds=3600)
    proto.set_spot(3000)
    perp_fill(proto, maker, taker, False, 3 * WAD, 2990 * WAD)  # the maker sells 3 at 2,990
    boa.env.time_travel(seconds=1800)
    proto.set_spot(2950)
    spot = 2950 * WAD
    q, price, owed = proto.perp_book.margin_terms(taker, spot)
    before = proto.engine.cash(taker)
    mtm_before = proto.engine.margin(taker)[0]
    index = kp.index_at(twin_market(proto), spot, boa.env.timestamp)
    expected = kp.settle(kp.Position(*proto.perp_book.position(taker)), spot, index)[1]
    with boa.env.prank(addr("anyone")):
        proto.engine.settle_perp(taker)
    assert proto.engine.cash(taker) == before + expected
    assert position(proto, taker)[:2] == (3 * WAD, spot)
    # The model counted q (S - P) rounded down and the funding rounded up: settling never
    # lowers the value, and raises it by at most two wei of rounding.
    mtm_after = proto.engine.margin(taker)[0]
    assert 0 <= mtm_after - mtm_before <= 2
    assert 0 <= expected - (q * (spot - price) // WAD - owed) <= 1


def test_settle_perp_without_a_position_is_a_no_op(proto):
    alice = addr("alice")
    proto.fund(alice, usd=100)
    proto.engine.settle_perp(alice)
    assert [e for e in events(proto.engine) if e[0] == "PerpSettled"] == []
    assert proto.engine.cash(alice) == 100 * WAD


def test_perp_only_account_cannot_withdraw_below_initial_margin(proto, pair):
    maker, taker = pair
    perp_fill(proto, maker, taker, True, 10 * WAD, SPOT)
    # The taker holds only a perp and positive cash: its withdrawals still meet the margin rule.
    with boa.env.prank(taker), boa.reverts("engine: below initial margin"):
        proto.engine.withdraw(proto.usd.address, 49_900 * 10**6, taker)
    with boa.env.prank(taker):
        proto.engine.withdraw(proto.usd.address, 40_000 * 10**6, taker)


def test_perp_books_are_set_once(proto):
    with boa.reverts("engine: unknown role"):
        proto.engine.set_role("perps", addr("other book"))
    with boa.reverts("engine: unknown role"):
        proto.engine.set_role("orders", addr("other book"))
    assert proto.engine.perp_book() == proto.perp_book.address
    assert proto.engine.order_book() == proto.order_book.address


def test_perp_liquidation_moves_the_fraction_after_settling(proto):
    maker, victim, bidder = P.Maker.new("perp maker"), addr("perp victim"), addr("perp bidder")
    proto.fund(maker.address, usd=200_000)
    proto.fund(victim, usd=9_000)
    proto.fund(bidder, usd=200_000)
    # The victim buys 20 perps (60,000 USD of notional on 9,000 of cash, about IM's need: a
    # 10.5% spot shock plus the 2.5% contingency); the price falls 8%.
    perp_fill(proto, maker, victim, False, 20 * WAD, SPOT)
    proto.set_spot(2760)
    mtm, _, health_mm = proto.engine.margin(victim)
    assert health_mm < 0 < mtm
    # No funding accrued (the fill weighed nothing in the mark): MtM = 9,000 - 20 * 240.
    assert mtm == 4_200 * WAD
    proto.liquidator.start_auction(victim, NO_WITNESS)
    bidder_before = proto.engine.margin(bidder)[0]
    fund_before = proto.engine.cash(proto.liquidator.address)
    with boa.env.prank(bidder):
        taken, outlay = proto.liquidator.bid(victim, WAD // 4, 2**255 - 1)
    # Value is conserved among the victim, the bidder and the fund, up to the bid's roundings.
    total_after = (
        proto.engine.margin(victim)[0]
        + proto.engine.margin(bidder)[0]
        - bidder_before
        + proto.engine.cash(proto.liquidator.address)
        - fund_before
    )
    assert 0 <= mtm - total_after <= 4
    # And split as a bid promises: the victim keeps 1 - f of its value plus the price (the
    # outlay less the fund's fee), so the bidder gains f of the value less what it paid.
    fee = proto.engine.cash(proto.liquidator.address) - fund_before
    victim_after = proto.engine.margin(victim)[0]
    assert abs(victim_after - (mtm - mtm * taken // WAD + outlay - fee)) <= 4
    assert 0 < taken <= WAD // 4
    moved = 20 * WAD * taken // WAD
    spot = 2760 * WAD
    # Both perps were settled at the index first, so the fraction moved with nothing unsettled.
    assert position(proto, victim)[:2] == (20 * WAD - moved, spot)
    assert position(proto, bidder)[:2] == (moved, spot)
    assert proto.perp_book.open_interest() == 20 * WAD
    # The bidder is now a perp holder: its margin reads count the position it took.
    assert tuple(proto.engine.risk_inputs(bidder)[0][3])[:2] == (moved, spot)
    # The victim's price loss went into its cash before the fraction of cash moved.
    assert proto.engine.margin(victim)[2] > health_mm
    assert outlay > 0
