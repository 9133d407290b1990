"""MarginEngine: every action and revert reason, and the margin views on worked examples."""

from __future__ import annotations

import math

import boa
import pytest

from keeper.series import series_id
from tests import protocol as P  # noqa: N812
from tests.conftest import events

WAD = 10**18
BP = 10**14  # a basis point as a wad: the unit of a_perp
DAY = 86_400
E7 = P.expiry_in(8)  # a weekly expiry one week after the deployment time


pytestmark = pytest.mark.usefixtures("isolate")


@pytest.fixture
def call_3200(proto):
    return proto.engine.list_series(E7, 3200 * WAD, True)


@pytest.fixture
def put_2800(proto):
    return proto.engine.list_series(E7, 2800 * WAD, False)


def addr(name: str) -> str:
    return boa.env.generate_address(name)


def fill(proto, maker, taker, series_id, is_buy, size, price, amount=None, caller=None, order=None):
    order = order or maker.order(series_id, is_buy, size, price)
    sig = maker.sign(proto, order)
    with boa.env.prank(caller or taker):
        proto.engine.fill(P.as_tuple(order), sig, amount or size, taker)
    return order


# --- deposits and withdrawals -----------------------------------------------------------------


def test_deposit_converts_token_decimals_to_wad(proto):
    alice = addr("alice")
    proto.fund(alice, usd=1234.567891, weth=1.5)
    assert proto.engine.cash(alice) == 1234_567891 * 10**12
    assert proto.engine.underlying_balance(alice) == 15 * WAD // 10
    assert proto.usd.balanceOf(proto.engine.address) == 1234_567891


def test_deposit_for_credits_another_account(proto):
    payer, alice = addr("payer"), addr("alice")
    proto.usd.mint(payer, 10**6)
    with boa.env.prank(payer):
        proto.usd.approve(proto.engine.address, 10**6)
        proto.engine.deposit_for(alice, proto.usd.address, 10**6)
    assert proto.engine.cash(alice) == WAD
    assert proto.engine.cash(payer) == 0


@pytest.mark.parametrize(
    ("token", "amount", "reason"),
    [("usd", 0, "engine: zero amount"), ("other", 1, "engine: unknown token")],
)
def test_deposit_reverts(proto, token, amount, reason):
    address = proto.usd.address if token == "usd" else proto.engine.address
    with boa.reverts(reason):
        proto.engine.deposit(address, amount)


def test_deposit_for_zero_account_reverts(proto):
    with boa.reverts("engine: zero account"):
        proto.engine.deposit_for("0x" + "00" * 20, proto.usd.address, 1)


def test_deposit_cap(proto):
    proto.engine.set_caps(1000 * WAD, 2 * WAD)
    alice = addr("alice")
    proto.fund(alice, usd=1000, weth=2)
    with boa.reverts("engine: cap exceeded"):
        proto.fund(alice, usd=1)
    with boa.reverts("engine: cap exceeded"):
        proto.fund(alice, weth=0.001)


def test_withdraw_round_trip_returns_tokens(proto):
    alice = addr("alice")
    proto.fund(alice, usd=500, weth=2)
    with boa.env.prank(alice):
        proto.engine.withdraw(proto.usd.address, 200 * 10**6, alice)
        proto.engine.withdraw(proto.weth.address, WAD, alice)
    assert proto.usd.balanceOf(alice) == 200 * 10**6
    assert proto.weth.balanceOf(alice) == WAD
    assert proto.engine.cash(alice) == 300 * WAD
    assert proto.engine.underlying_balance(alice) == WAD


def test_withdraw_without_positions_cannot_create_debt(proto):
    alice = addr("alice")
    proto.fund(alice, usd=100)
    with boa.env.prank(alice), boa.reverts("engine: below initial margin"):
        proto.engine.withdraw(proto.usd.address, 101 * 10**6, alice)


def test_withdraw_against_underlying_borrows_cash_within_margin(proto):
    alice = addr("alice")
    proto.fund(alice, weth=1)  # 3,000 USD of collateral, IM haircut 15% and a spot shock
    # Cash can go negative when backed by collateral: the usd must come from someone's deposit.
    proto.fund(addr("lender"), usd=10_000)
    with boa.env.prank(alice):
        proto.engine.withdraw(proto.usd.address, 1_000 * 10**6, alice)
    assert proto.engine.cash(alice) == -1000 * WAD
    assert proto.engine.cash_debt(alice) == 1000 * WAD
    with boa.env.prank(alice), boa.reverts("engine: below initial margin"):
        proto.engine.withdraw(proto.usd.address, 2_000 * 10**6, alice)


def test_withdraw_beyond_the_health_floor_is_judged_by_the_full_grid(proto, put_2800):
    # Short 10 puts against 3,000 USD: the floor (every put at its strike) is far below zero,
    # H_IM is not, so the initial-margin check falls back to the grid, and it holds to the
    # last micro-USD that H_IM allows.
    alice = P.short_puts(proto, put_2800, "alice")
    assert proto.health_floor(alice) < 0
    h_im = proto.engine.health(alice, True)[0]
    allowed = h_im // 10**12  # USD, 6 decimals
    with boa.env.anchor():
        with boa.env.prank(alice):
            proto.engine.withdraw(proto.usd.address, allowed, alice)
        assert 0 <= proto.engine.health(alice, True)[0] < 10**12
    with boa.env.prank(alice), boa.reverts("engine: below initial margin"):
        proto.engine.withdraw(proto.usd.address, allowed + 1, alice)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("zero", "engine: zero amount"),
        ("receiver", "engine: zero receiver"),
        ("token", "engine: unknown token"),
        ("underlying", "engine: insufficient underlying"),
    ],
)
def test_withdraw_reverts(proto, kind, reason):
    alice = addr("alice")
    proto.fund(alice, usd=100, weth=1)
    token = {"token": proto.engine.address, "underlying": proto.weth.address}.get(
        kind, proto.usd.address
    )
    amount = {"zero": 0, "underlying": 2 * WAD}.get(kind, 1)
    receiver = "0x" + "00" * 20 if kind == "receiver" else alice
    with boa.env.prank(alice), boa.reverts(reason):
        proto.engine.withdraw(token, amount, receiver)


def test_operator_cannot_withdraw_the_account(proto):
    alice, keeper = addr("alice"), addr("keeper")
    proto.fund(alice, usd=100)
    with boa.env.prank(alice):
        proto.engine.set_operator(keeper, True)
    assert proto.engine.is_operator(alice, keeper)
    # withdraw only ever acts on msg.sender's own account: the keeper has nothing.
    with boa.env.prank(keeper), boa.reverts("engine: below initial margin"):
        proto.engine.withdraw(proto.usd.address, 1, keeper)
    assert proto.engine.cash(alice) == 100 * WAD


def test_set_operator_rejects_zero(proto):
    with boa.reverts("engine: zero operator"):
        proto.engine.set_operator("0x" + "00" * 20, True)


# --- series and settlement ---------------------------------------------------------------------


def test_list_series_records_and_emits(proto):
    sid = proto.engine.list_series(E7, 3200 * WAD, True)
    # The id is the series' terms packed (keeper/series.py), so keepers know it off chain.
    assert sid == (E7 // 3600) << 121 | 1 << 120 | 3200 * WAD == series_id(E7, 3200 * WAD, True)
    assert proto.engine.series(sid) == (E7, 3200 * WAD, True, True)
    assert proto.engine.live_expiries(0) == E7
    put = proto.engine.list_series(E7, 3200 * WAD, False)
    assert put == sid - (1 << 120)
    assert proto.engine.series(put) == (E7, 3200 * WAD, False, True)
    # Unlisted terms decode but are not listed.
    assert proto.engine.series(sid + 1) == (E7, 3200 * WAD + 1, True, False)


def test_list_series_twice_reverts(proto):
    proto.engine.list_series(E7, 3200 * WAD, True)
    with boa.reverts("engine: series listed"):
        proto.engine.list_series(E7, 3200 * WAD, True)


@pytest.mark.parametrize(
    ("expiry", "strike", "reason"),
    [
        (E7 + 1, 3000 * WAD, "engine: bad expiry"),
        (P.START - 3600, 3000 * WAD, "engine: bad expiry"),
        (P.expiry_in(800), 3000 * WAD, "engine: bad expiry"),
        # The tenor limit is two years of 365 days: the next grid expiry is already too far.
        (P.expiry_in(731), 3000 * WAD, "engine: bad expiry"),
        (P.expiry_in(15), 3000 * WAD, "engine: no vol entry"),
        (E7, 299 * WAD, "engine: strike out of bounds"),
        (E7, 30_001 * WAD, "engine: strike out of bounds"),
    ],
)
def test_list_series_reverts(proto, expiry, strike, reason):
    with boa.reverts(reason):
        proto.engine.list_series(expiry, strike, True)


def test_list_series_up_to_two_years_ahead(proto):
    # The last hour on the grid within two years of 365 days is still listable.
    far = (boa.env.timestamp + 2 * 365 * 86_400) // 3600 * 3600
    proto.vol.update(far, 6 * WAD // 10, 0)
    sid = proto.engine.list_series(far, 3000 * WAD, True)
    assert proto.engine.series(sid) == (far, 3000 * WAD, True, True)


def test_list_series_only_risk_admin(proto):
    with boa.env.prank(addr("mallory")), boa.reverts("engine: not risk admin"):
        proto.engine.list_series(E7, 3000 * WAD, True)


def test_settle_expiry_rules(proto, call_3200):
    no_hints = [0] * proto.oracle.source_count()
    with boa.reverts("engine: unknown expiry"):
        proto.engine.settle_expiry(E7 + 3600, no_hints)
    with boa.reverts("oracle: not expired"):
        proto.engine.settle_expiry(E7, no_hints)
    boa.env.time_travel(seconds=E7 - boa.env.timestamp - 60)
    proto.set_spot(3400)
    boa.env.time_travel(seconds=60)
    # Fresh feeds, but updated before the expiry: the aggregator waits for their next rounds.
    with boa.reverts("oracle: settlement source pending"):
        proto.engine.settle_expiry(E7, no_hints)
    boa.env.time_travel(seconds=60)
    proto.set_spot(3500)
    boa.env.time_travel(seconds=600)
    proto.set_spot(3600)  # a later round: the first one after the expiry still settles
    with boa.reverts("oracle: bad settlement hint"):
        proto.engine.settle_expiry(E7, [f.latestRoundData()[0] for f in proto.feeds])
    hints = proto.settlement_hints(E7)
    proto.engine.settle_expiry(E7, hints)
    assert events(proto.engine)[-1] == ("ExpirySettled", {"expiry": E7, "price": 3500 * WAD})
    assert proto.engine.settlement_price(E7) == 3500 * WAD
    with boa.reverts("engine: unknown expiry"):
        proto.settle_expiry(E7)


def test_reference_vol_of_an_account_without_positions_is_the_configured_floor(proto):
    portfolio, market = proto.engine.risk_inputs(addr("anyone"))
    limits, _ = proto.vol.packed_entries([])
    assert market[3:] == (P.REF_VOL, limits)
    assert proto.calculator.reference_vol(portfolio, market) == P.REF_VOL


def test_live_expiries_ascend_and_settling_drops_exactly_the_settled_one(proto):
    mid, far = P.expiry_in(15), P.expiry_in(36)
    for e in (mid, far):
        proto.vol.update(e, (7 if e == mid else 6) * WAD // 10, 0)
    for e in (far, E7, mid):  # listed out of order
        proto.engine.list_series(e, 3000 * WAD, True)
    assert [proto.engine.live_expiries(i) for i in range(3)] == [E7, mid, far]
    # E7 and mid pass; mid is settled first: the list keeps E7 (unsettled) in front of far.
    boa.env.time_travel(seconds=E7 - boa.env.timestamp + 60)
    proto.set_spot(3050)  # the rounds E7 settles at
    boa.env.time_travel(seconds=mid - boa.env.timestamp + 60)
    proto.set_spot(3100)
    proto.vol.update(far, 6 * WAD // 10, 0)
    proto.settle_expiry(mid)
    assert [proto.engine.live_expiries(i) for i in range(2)] == [E7, far]
    proto.settle_expiry(E7)
    assert proto.engine.live_expiries(0) == far
    with boa.reverts():
        proto.engine.live_expiries(1)


@pytest.mark.parametrize(
    ("strike", "is_call", "size", "premium", "spot", "payoff"),
    [
        # Maker long 2 calls at 50: payoff 2 x (3500 - 3200) = 600 each way.
        (3200, True, 2, 50, 3500, 600),
        # Maker long 3 puts at 40: payoff 3 x (2800 - 2650) = 450 each way.
        (2800, False, 3, 40, 2650, 450),
    ],
)
def test_expired_positions_settle_into_cash(proto, strike, is_call, size, premium, spot, payoff):
    series_id = proto.engine.list_series(E7, strike * WAD, is_call)
    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=100_000)
    proto.fund(taker, usd=100_000)
    fill(proto, maker, taker, series_id, True, size * WAD, premium * WAD)
    boa.env.time_travel(seconds=E7 - boa.env.timestamp + 60)
    proto.set_spot(spot)
    proto.settle_expiry(E7)
    proto.engine.settle_positions(maker.address)
    proto.engine.settle_positions(taker)
    paid = size * premium
    assert proto.engine.cash(maker.address) == (100_000 - paid + payoff) * WAD
    assert proto.engine.cash(taker) == (100_000 + paid - payoff) * WAD
    assert P.position_ids(proto.engine, maker.address) == ([], [])
    assert P.position_ids(proto.engine, taker) == ([], [])


# --- fills ---------------------------------------------------------------------------------------


def test_fill_moves_options_and_premium(proto, call_3200):
    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=100_000)
    proto.fund(taker, usd=50_000)
    order = fill(proto, maker, taker, call_3200, True, 5 * WAD, 101 * WAD, amount=2 * WAD)
    assert P.position_ids(proto.engine, maker.address) == ([call_3200], [2 * WAD])
    assert P.position_ids(proto.engine, taker) == ([call_3200], [-2 * WAD])
    assert proto.engine.cash(maker.address) == (100_000 - 202) * WAD
    assert proto.engine.cash(taker) == (50_000 + 202) * WAD
    assert proto.order_book.filled(maker.digest(proto, order)) == 2 * WAD


def test_fill_by_operator(proto, call_3200):
    maker, taker, keeper = P.Maker.new("mm"), addr("taker"), addr("keeper")
    proto.fund(maker.address, usd=100_000)
    proto.fund(taker, usd=50_000)
    with boa.env.prank(taker):
        proto.engine.set_operator(keeper, True)
    low, high = proto.price_band(call_3200, taker)
    # An operator's fill is held to the fair-price band, on both sides of it.
    for price in (low - 1, high + 1):
        with boa.reverts("engine: price outside band"):
            fill(proto, maker, taker, call_3200, False, WAD, price, caller=keeper)
    fill(proto, maker, taker, call_3200, False, WAD, high, caller=keeper)
    assert P.position_ids(proto.engine, taker) == ([call_3200], [WAD])


def test_fill_rejects_unauthorised_caller(proto, call_3200):
    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=100_000)
    with boa.reverts("engine: not authorised"):
        fill(proto, maker, taker, call_3200, True, WAD, WAD, caller=addr("mallory"))


def test_fill_rejects_when_paused_and_guardian_only(proto, call_3200):
    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=100_000)
    proto.fund(taker, usd=100_000)
    with boa.env.prank(addr("mallory")), boa.reverts("engine: not guardian"):
        proto.engine.set_paused(True)
    proto.engine.set_paused(True)
    with boa.reverts("engine: paused"):
        fill(proto, maker, taker, call_3200, True, WAD, WAD)
    # Deposits and healthy withdrawals go on while paused.
    proto.fund(taker, usd=1)
    with boa.env.prank(taker):
        proto.engine.withdraw(proto.usd.address, 10**6, taker)


def test_fill_rejects_during_sequencer_grace(proto, call_3200):
    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=100_000)
    proto.fund(taker, usd=100_000)
    proto.sequencer_feed.set_status(True)
    with boa.reverts("engine: sequencer grace"):
        fill(proto, maker, taker, call_3200, True, WAD, WAD)


@pytest.mark.parametrize("case", ["unknown", "expired", "self", "large"])
def test_fill_rejects_bad_trades(proto, call_3200, case):
    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=100_000)
    series_id, size = call_3200, WAD
    if case == "unknown":
        series_id = 99
    if case == "self":
        taker = maker.address
    if case == "large":
        size = 2**96 + 1
    order = maker.order(series_id, True, size, WAD, deadline=E7 + 86400)
    if case == "expired":
        boa.env.time_travel(seconds=E7 - boa.env.timestamp)
    reason = {
        "unknown": "engine: unknown series",
        "expired": "engine: series expired",
        "self": "engine: self trade",
        "large": "engine: size too large",
    }[case]
    with boa.reverts(reason):
        fill(proto, maker, taker, series_id, True, size, WAD, order=order)


def test_fill_rejects_trade_leaving_taker_below_initial_margin(proto, call_3200):
    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=1_000_000)
    proto.fund(taker, usd=100)  # far too little to write 10 calls
    with boa.reverts("engine: below initial margin"):
        fill(proto, maker, taker, call_3200, True, 10 * WAD, 20 * WAD)


def test_fill_that_reduces_risk_is_allowed_below_initial_margin(proto, call_3200):
    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=1_000_000)
    proto.fund(taker, usd=3_000)
    fill(proto, maker, taker, call_3200, True, 5 * WAD, 20 * WAD)  # taker short 5 calls
    proto.set_spot(3380)  # the short loses: taker now below IM but above MM
    _, h_im, h_mm = proto.engine.margin(taker)
    assert h_im < 0 <= h_mm
    # Buying back 2 calls lowers the risk: H_MM rises, so it is allowed although H_IM < 0.
    buyer = P.Maker.new("mm2")
    proto.fund(buyer.address, usd=100_000)
    fill(proto, maker, taker, call_3200, False, 2 * WAD, 160 * WAD)
    assert proto.engine.margin(taker)[2] >= h_mm


def test_order_book_is_filled_by_its_engine_only(proto, call_3200):
    maker, taker = P.Maker.new("mm"), addr("taker")
    order = maker.order(call_3200, True, WAD, WAD)
    sig = maker.sign(proto, order)
    with boa.env.prank(taker), boa.reverts("orders: not engine"):
        proto.order_book.fill(P.as_tuple(order), sig, WAD)
    assert proto.order_book.ENGINE() == proto.engine.address
    # The EIP-712 domain's verifying contract is the book, which verifies the signature.
    assert proto.order_book.eip712Domain()[4] == proto.order_book.address
    assert proto.order_book.order_hash(P.as_tuple(order)) == maker.digest(proto, order)
    with boa.reverts("orders: no engine"):
        boa.load_partial("contracts/margin/OrderBook.vy").deploy("0x" + "00" * 20)


def test_orders_module_reasons_surface_through_the_engine(proto, call_3200):
    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=100_000)
    proto.fund(taker, usd=100_000)
    order = maker.order(call_3200, True, WAD, WAD, deadline=boa.env.timestamp - 1)
    with boa.reverts("orders: expired"):
        fill(proto, maker, taker, call_3200, True, WAD, WAD, order=order)
    order = maker.order(call_3200, True, WAD, WAD, nonce=3)
    with boa.env.prank(maker.address):
        proto.order_book.cancel_all_below(4)
    with boa.reverts("orders: nonce cancelled"):
        fill(proto, maker, taker, call_3200, True, WAD, WAD, order=order)
    order = maker.order(call_3200, True, WAD, WAD, nonce=5)
    with boa.env.prank(taker), boa.reverts("orders: not maker"):
        proto.order_book.cancel(P.as_tuple(order))
    with boa.env.prank(maker.address):
        proto.order_book.cancel(P.as_tuple(order))
    with boa.reverts("orders: cancelled"):
        fill(proto, maker, taker, call_3200, True, WAD, WAD, order=order)


def test_default_position_limit_is_sixteen(proto):
    # DESIGN.md: 16 positions per account unless the risk admin sets another limit.
    assert proto.engine.risk_params()[4] == 16


def test_position_limit(proto):
    proto.engine.set_risk_params(P.IM, P.MM, P.GRID, P.REF_VOL, 2)
    ids = [proto.engine.list_series(E7, k * WAD, True) for k in (3000, 3100, 3200)]
    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=1_000_000)
    proto.fund(taker, usd=1_000_000)
    fill(proto, maker, taker, ids[0], True, WAD, WAD)
    fill(proto, maker, taker, ids[1], True, WAD, WAD)
    with boa.reverts("engine: too many positions"):
        fill(proto, maker, taker, ids[2], True, WAD, WAD)
    # Closing a position frees its slot.
    fill(proto, maker, taker, ids[0], False, WAD, WAD)
    fill(proto, maker, taker, ids[2], True, WAD, WAD)
    assert sorted(P.position_ids(proto.engine, taker)[0]) == sorted([ids[1], ids[2]])


# --- margin views --------------------------------------------------------------------------------


def test_cash_only_account_health_is_its_cash(proto):
    alice = addr("alice")
    proto.fund(alice, usd=2500)
    assert proto.engine.margin(alice) == (2500 * WAD, 2500 * WAD, 2500 * WAD)


def test_witness_scenario_reproduces_health(proto, call_3200, put_2800):
    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=1_000_000)
    proto.fund(taker, usd=20_000, weth=1)
    fill(proto, maker, taker, call_3200, True, 3 * WAD, 60 * WAD)
    fill(proto, maker, taker, put_2800, True, 2 * WAD, 45 * WAD)
    for is_im in (True, False):
        h, w = proto.engine.health(taker, is_im)
        assert proto.engine.scenario_health(taker, w, is_im) == h
        # H_IM's scenarios are IM's grid then MM's (indices 21..41).
        for other in range(42 if is_im else 21):
            assert proto.engine.scenario_health(taker, other, is_im) >= h
    with boa.reverts("risk: bad scenario"):
        proto.engine.scenario_health(taker, 21, False)


def test_account_greeks_match_black76(proto, call_3200):
    from keeper.black76 import black76

    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=1_000_000)
    proto.fund(taker, usd=20_000, weth=2)
    fill(proto, maker, taker, call_3200, True, 3 * WAD, 60 * WAD)  # taker short 3 calls
    delta, gamma, vega, theta = proto.engine.account_greeks(taker)
    tau = (E7 - boa.env.timestamp) / P.YEAR
    ref = black76(3000.0, 3200.0, tau, 0.6, True)
    assert math.isclose(delta / WAD, 2 - 3 * float(ref.delta), rel_tol=1e-12)
    assert math.isclose(gamma / WAD, -3 * float(ref.gamma), rel_tol=1e-9)
    assert math.isclose(vega / WAD, -3 * float(ref.vega), rel_tol=1e-12)
    assert math.isclose(theta / WAD, -3 * float(ref.theta), rel_tol=1e-12)


# --- administration ------------------------------------------------------------------------------


def test_risk_params_bounds(proto):
    im, mm, grid = list(P.IM), list(P.MM), list(P.GRID)
    with boa.reverts("engine: IM weaker than MM"):
        proto.engine.set_risk_params(tuple([*mm[:1], 0, *mm[2:]]), P.MM, P.GRID, P.REF_VOL, 16)
    with boa.reverts("engine: bad params"):
        proto.engine.set_risk_params(P.IM, tuple([WAD // 2, *mm[1:]]), P.GRID, P.REF_VOL, 16)
    # The perp contingency: IM's at least MM's, both within [0, 0.2].
    with boa.reverts("engine: IM weaker than MM"):
        proto.engine.set_risk_params((*im[:5], mm[5] - BP), P.MM, P.GRID, P.REF_VOL, 16)
    with boa.reverts("engine: bad params"):
        proto.engine.set_risk_params(P.IM, (*mm[:5], WAD // 5 + BP), P.GRID, P.REF_VOL, 16)
    with boa.reverts("engine: IM weaker than MM"):
        proto.engine.set_risk_params((*im[:5], WAD // 5 + BP), P.MM, P.GRID, P.REF_VOL, 16)
    # a_perp is stored in whole basis points.
    with boa.reverts("engine: bad params"):
        proto.engine.set_risk_params(tuple([*im[:5], im[5] + 1]), P.MM, P.GRID, P.REF_VOL, 16)
    with boa.reverts("engine: bad params"):
        proto.engine.set_risk_params(P.IM, tuple([*mm[:5], mm[5] + 10**13]), P.GRID, P.REF_VOL, 16)
    with boa.reverts("engine: bad params"):
        proto.engine.set_risk_params(P.IM, P.MM, tuple([11, *grid[1:]]), P.REF_VOL, 16)
    with boa.reverts("engine: bad params"):
        proto.engine.set_risk_params(P.IM, P.MM, P.GRID, P.REF_VOL, 33)
    with boa.env.prank(addr("mallory")), boa.reverts("engine: not risk admin"):
        proto.engine.set_risk_params(tuple(im), P.MM, P.GRID, P.REF_VOL, 16)
    with boa.env.prank(addr("mallory")), boa.reverts("engine: not risk admin"):
        proto.engine.set_caps(1, 1)


@pytest.mark.parametrize(
    "params",
    [
        # Every value at its upper bound: the packed lanes (85 bits) must not bleed into each other.
        (
            (20 * WAD, WAD, WAD // 5, WAD, WAD // 2, WAD // 5),
            (20 * WAD, WAD, WAD // 5, WAD, WAD // 2, WAD // 5),
            (10, 30 * DAY, WAD * 9 // 10, WAD * 9 // 10, WAD, WAD, WAD),
            10 * WAD,
            32,
        ),
        # Lower bounds and odd values in every field.
        (
            (WAD + 3, 5, 7, 11, 13, 23 * 10**14),
            (WAD + 1, 1, 0, 0, 0, 17 * 10**14),
            (1, 3600, 0, 17, 19, 1, 0),
            10**16,
            1,
        ),
        (P.IM, P.MM, P.GRID, P.REF_VOL, 16),
    ],
)
def test_risk_params_round_trip_through_their_packed_storage(proto, params):
    proto.engine.set_risk_params(*params)
    (log,) = proto.engine.get_logs()
    assert (tuple(log.im), tuple(log.mm), tuple(log.grid)) == params[:3]
    assert proto.engine.risk_params() == params


def test_roles_and_two_step_ownership(proto):
    new_owner, admin = addr("new_owner"), addr("admin")
    with boa.env.prank(admin), boa.reverts("ownable: not owner"):
        proto.engine.set_role("guardian", admin)
    with boa.reverts("engine: unknown role"):
        proto.engine.set_role("king", admin)
    proto.engine.set_role("risk_admin", admin)
    assert proto.engine.risk_admin() == admin
    proto.engine.transfer_ownership(new_owner)
    with boa.reverts("ownable: not pending owner"):
        proto.engine.accept_ownership()
    with boa.env.prank(new_owner):
        proto.engine.accept_ownership()
    assert proto.engine.owner() == new_owner
    with boa.reverts("ownable: not owner"):
        proto.engine.transfer_ownership(admin)


def test_fill_settles_expired_positions_first_freeing_their_slots(proto, call_3200):
    proto.engine.set_risk_params(P.IM, P.MM, P.GRID, P.REF_VOL, 1)
    later = P.expiry_in(15)
    proto.vol.update(later, 6 * WAD // 10, 0)
    next_series = proto.engine.list_series(later, 3200 * WAD, True)
    maker, taker = P.Maker.new("mm"), addr("taker")
    proto.fund(maker.address, usd=1_000_000)
    proto.fund(taker, usd=100_000)
    fill(proto, maker, taker, call_3200, False, WAD, 50 * WAD)  # taker long 1 call (its 1 slot)
    boa.env.time_travel(seconds=E7 - boa.env.timestamp + 60)
    proto.set_spot(3300)
    proto.settle_expiry(E7)
    proto.vol.update(later, 6 * WAD // 10, 0)  # fresh again: no new risk on a stale expiry
    # The expired call still holds the taker's only slot until the next fill settles it.
    fill(proto, maker, taker, next_series, False, WAD, 60 * WAD)
    assert P.position_ids(proto.engine, taker) == ([next_series], [WAD])
    assert proto.engine.cash(taker) == (100_000 - 50 + 100 - 60) * WAD


def test_at_most_sixteen_live_expiries(proto):
    expiries = [P.expiry_in(10 + d) for d in range(17)]
    for e in expiries:
        proto.vol.update(e, 6 * WAD // 10, 0)
    for e in expiries[:16]:
        proto.engine.list_series(e, 3000 * WAD, True)
    proto.engine.list_series(expiries[0], 3100 * WAD, True)  # a live expiry: still allowed
    with boa.reverts("engine: too many expiries"):
        proto.engine.list_series(expiries[16], 3000 * WAD, True)


def test_spot_out_of_range_blocks_the_margin_check(proto):
    alice = addr("alice")
    proto.fund(alice, usd=100)
    proto.set_spot(2e17)  # 2e35 wad: above the engine's 1e35 bound, below the oracle's 1e36
    with boa.reverts("engine: spot out of range"):
        proto.engine.margin(alice)


def test_tokens_above_18_decimals_are_rejected(proto):
    odd = P.load("contracts/mocks/MockERC20.vy", "Odd", "ODD", 19)
    with boa.reverts("engine: decimals above 18"):
        P.load(
            "contracts/margin/MarginEngine.vy",
            proto.calculator.address,
            proto.oracle.address,
            proto.vol.address,
            odd.address,
            proto.weth.address,
            P.IM,
            P.MM,
            P.GRID,
            P.REF_VOL,
        )


def test_withdraw_during_sequencer_grace_only_for_accounts_without_positions(proto, call_3200):
    maker, taker, saver = P.Maker.new("mm"), addr("taker"), addr("saver")
    proto.fund(maker.address, usd=100_000)
    proto.fund(taker, usd=100_000)
    proto.fund(saver, usd=1_000)
    fill(proto, maker, taker, call_3200, True, WAD, WAD)
    proto.sequencer_feed.set_status(True)  # down: no new risk
    with boa.env.prank(taker), boa.reverts("engine: sequencer grace"):
        proto.engine.withdraw(proto.usd.address, 10**6, taker)
    with boa.env.prank(saver):  # cash only: its exit is never blocked
        proto.engine.withdraw(proto.usd.address, 1_000 * 10**6, saver)
    assert proto.usd.balanceOf(saver) == 1_000 * 10**6


def test_socialized_loss_lowers_positive_cash_only(proto):
    rich, poor, fund = addr("rich"), addr("poor"), addr("fund")
    proto.fund(rich, usd=3_000)
    proto.fund(addr("other"), usd=1_000)
    proto.fund(poor, weth=1)
    proto.engine.set_role("liquidator", fund)
    with boa.env.prank(fund):
        proto.engine.move_cash(poor, fund, 500 * WAD)  # `poor` owes 500 against its WETH
        proto.engine.socialize_loss(fund, 400 * WAD)
    # The other positive balances (3,000 + 1,000 shares) lose the 400 together: the price
    # falls by ceil(400 / 4,000 shares); the receiver's own 500 shares are left out (credited
    # back what they lost), so it ends exactly 400 richer.
    price = WAD - -(-400 * WAD * WAD // (4_000 * WAD))
    assert price == 9 * WAD // 10
    assert proto.engine.cash_pool()[0] == price
    assert proto.engine.cash(rich) == 3_000 * WAD * price // WAD
    assert proto.engine.cash(fund) == 900 * WAD
    assert proto.engine.cash(poor) == -500 * WAD  # debts are untouched
    assert proto.engine.deficit() == 0


def test_fill_is_locked_against_reentry_through_a_token_callback():
    """A cash token that calls MarginEngine.fill from inside the transfer of a deposit: the
    fill that succeeds on its own fails inside the engine's lock, and the deposit with it."""
    with boa.env.anchor():
        token = P.load("tests/contracts/TestToken.vy", "Hostile USD", "HUSD", 6)
        p = P.deploy(usd=token)
        p.vol.update(E7, 6 * WAD // 10, 0)
        sid = p.engine.list_series(E7, 3200 * WAD, True)
        maker = P.Maker.new("mm")
        p.fund(maker.address, usd=100_000)
        token.mint(p.admin, 100_000 * 10**6)
        token.approve(p.engine.address, 100_000 * 10**6)
        p.engine.deposit_for(token.address, token.address, 100_000 * 10**6)  # the token trades
        order = maker.order(sid, True, WAD, WAD)
        args = (P.as_tuple(order), maker.sign(p, order), WAD, token.address)
        with boa.env.anchor(), boa.env.prank(token.address):
            p.engine.fill(*args)
            assert P.position_ids(p.engine, token.address)[0] == [sid]
        payer = addr("payer")
        token.mint(payer, 10**6)
        with boa.env.prank(payer):
            token.approve(p.engine.address, 10**6)
        token.set_hook(p.engine.address, p.engine.fill.prepare_calldata(*args))
        with boa.env.prank(payer), boa.reverts():
            p.engine.deposit(token.address, 10**6)
        assert p.engine.packed_positions(token.address) == []
        assert p.engine.cash(payer) == 0


def test_cash_only_withdrawal_needs_no_oracle(proto, call_3200):
    maker, taker, saver = P.Maker.new("mm"), addr("taker"), addr("saver")
    proto.fund(maker.address, usd=100_000)
    proto.fund(taker, usd=100_000)
    proto.fund(saver, usd=1_000)
    fill(proto, maker, taker, call_3200, True, WAD, WAD)
    boa.env.time_travel(seconds=2 * 3600)  # every feed is past its heartbeat: no price
    with boa.env.prank(taker), boa.reverts("oracle: too few fresh sources"):
        proto.engine.withdraw(proto.usd.address, 10**6, taker)
    with boa.env.prank(saver):  # no positions, no debt: exits without a margin check
        proto.engine.withdraw(proto.usd.address, 1_000 * 10**6, saver)
    assert proto.usd.balanceOf(saver) == 1_000 * 10**6
