"""keeper.runtime.mirror: the engine's arithmetic replayed from events, evaluation, checkpoints."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from keeper import margin as km
from keeper import perp as kp
from keeper.runtime.mirror import WAD, Event, Mirror, MirrorError
from keeper.series import PERP_ID, pack_position, series_id
from tests.deployment import MARGIN_PARAMS

USD = "0x" + "11" * 20
WETH = "0x" + "22" * 20
A = "0x" + "aa" * 20
B = "0x" + "bb" * 20
C = "0x" + "cc" * 20
EXPIRY = 1_800_000_000 - 1_800_000_000 % 3600
SID = series_id(EXPIRY, 3000 * WAD, True)
SID2 = series_id(EXPIRY, 2500 * WAD, False)
SID3 = series_id(EXPIRY + 3600, 3500 * WAD, True)


def ev(name: str, block: int = 1, ts: int = 0, **args: object) -> Event:
    return Event(name, block, 0, args, ts)


def mirror() -> Mirror:
    return Mirror(USD, WETH, cash_scale=10**12, underlying_scale=1, width=4, shard_size=2)


def fill(maker: str, taker: str, sid: int, buy: bool, amount: int, premium: int) -> Event:
    return ev(
        "Fill",
        maker=maker,
        taker=taker,
        series_id=sid,
        maker_is_buy=buy,
        amount=amount,
        price=0,
        premium=premium,
        order_hash=b"",
    )


def test_deposit_withdraw_and_debt_exact():
    m = mirror()
    m.apply(ev("Deposit", account=A, payer=A, token=USD, amount=5, amount_wad=5 * 10**12))
    m.apply(ev("Deposit", account=A, payer=A, token=WETH, amount=7, amount_wad=7))
    a = m.account(A)
    assert (a.shares, a.debt, a.underlying) == (5 * 10**12, 0, 7)
    # Withdrawing more cash than the shares cover burns every share and leaves a debt.
    m.apply(ev("Withdraw", account=A, token=USD, receiver=A, amount=8, amount_wad=8 * 10**12))
    assert (a.shares, a.debt) == (0, 3 * 10**12)
    assert a.cash(m.supply_index, m.borrow_index) == -3 * 10**12
    # A credit repays the debt first, then mints shares.
    m.apply(ev("CashMoved", sender=B, receiver=A, amount=4 * 10**12))
    assert (a.shares, a.debt) == (10**12, 0)
    b = m.account(B)
    assert (b.shares, b.debt) == (0, 4 * 10**12)
    with pytest.raises(MirrorError, match="unknown token"):
        m.apply(ev("Deposit", account=A, payer=A, token=C, amount=1, amount_wad=1))


def test_share_price_rounding_matches_the_engine():
    m = mirror()
    m.apply(ev("Deposit", account=A, payer=A, token=USD, amount=1, amount_wad=10 * WAD))
    # 0.333... per supply share (an index a socialized loss could leave), borrow index 1.
    m.apply(ev("Accrued", supply_index=WAD // 3, borrow_index=WAD))
    assert m.market_epoch == 1
    a = m.account(A)
    assert a.cash(m.supply_index, m.borrow_index) == 10 * WAD * (WAD // 3) // WAD
    # A debit of 1 USD burns ceil(1e36 / price) shares.
    m.apply(ev("CashMoved", sender=A, receiver=B, amount=WAD))
    needed = (WAD * WAD + WAD // 3 - 1) // (WAD // 3)
    assert a.shares == 10 * WAD - needed
    assert m.account(B).shares == WAD * WAD // (WAD // 3)
    m.apply(ev("LossSocialized", receiver=C, amount=2 * WAD, deficit=0, supply_index=WAD // 3))
    assert m.account(C).shares == 2 * WAD * WAD // (WAD // 3)


def test_interest_events_reproduce_the_pool_exactly():
    """Accrued events set the indices; debts round up at the borrow index, supply down at the
    supply index, the reserve is paid to the fund, and cash is valued accrued to the market's
    time between touches (keeper.interest is the engine's arithmetic)."""
    m = mirror()
    m.apply(
        ev(
            "InterestParams",
            base=WAD // 20,
            slope1=WAD // 2,
            slope2=3 * WAD,
            kink=8 * WAD // 10,
            reserve_factor=WAD // 10,
            utilization_cap=9 * WAD // 10,
        )
    )
    m.apply(ev("Deposit", account=A, payer=A, token=USD, amount=1, amount_wad=1000 * WAD))
    m.apply(ev("Withdraw", account=B, token=USD, receiver=B, amount=1, amount_wad=400 * WAD))
    ib, si = 1_000_000_123_456_789_013, 1_000_000_049_382_715_604
    m.apply(ev("Accrued", supply_index=si, borrow_index=ib))
    debt = -(-400 * WAD * ib // WAD)  # rounded up
    assert m.account(B).cash(m.supply_index, m.borrow_index) == -debt
    m.apply(ev("CashMoved", sender=A, receiver=B, amount=500 * WAD))
    a, b = m.account(A), m.account(B)
    # B's debt is repaid (rounded against it) and the rest minted at the supply index.
    rest = 500 * WAD - debt
    assert (b.debt, b.shares) == (0, rest * WAD // si)
    assert a.shares == 1000 * WAD - -(-500 * WAD * WAD // si)
    m.apply(ev("ReserveCollected", fund=C, amount=7))
    assert m.account(C).shares == 7 * WAD // si
    # Valued at a later time, cash accrues (the indices are keeper.interest's).
    m.accrued_at = 1_000
    assert m.indices_at(1_000 + 86_400) != (m.supply_index, m.borrow_index)


def test_fills_keep_storage_order_and_swap_remove():
    m = mirror()
    m.apply(fill(A, B, SID, True, 2 * WAD, 100 * WAD))
    m.apply(fill(A, B, SID2, False, 3 * WAD, 50 * WAD))
    m.apply(fill(A, B, SID3, True, WAD, 10 * WAD))
    assert m.account(A).positions == [[SID, 2 * WAD], [SID2, -3 * WAD], [SID3, WAD]]
    assert m.account(B).positions == [[SID, -2 * WAD], [SID2, 3 * WAD], [SID3, -WAD]]
    # A buys 100, sells for 50 and buys for 10: cash -60 (a debt), B +60.
    assert m.account(A).debt == 60 * WAD and m.account(B).shares == 60 * WAD
    # Closing the first position moves the last one into its slot (MarginEngine._add_position).
    m.apply(fill(B, A, SID, True, 2 * WAD, 0))
    assert m.account(A).positions == [[SID3, WAD], [SID2, -3 * WAD]]
    assert m.account(A).words() == [pack_position(SID3, WAD), pack_position(SID2, -3 * WAD)]


def test_portfolio_moved_truncates_toward_zero_and_settlement_keeps_order():
    m = mirror()
    m.apply(fill(A, B, SID, True, 3, 0))
    m.apply(fill(A, B, SID2, False, 5, 0))
    m.apply(ev("Deposit", account=A, payer=A, token=WETH, amount=10, amount_wad=10))
    m.apply(ev("PortfolioMoved", account=A, receiver=C, fraction=WAD // 2))
    # 3 * 0.5 = 1.5 -> 1; -5 * 0.5 = -2.5 -> -2 (toward zero, as SDIV); underlying 10 -> 5.
    assert m.account(A).positions == [[SID, 2], [SID2, -3]]
    assert m.account(C).positions == [[SID, 1], [SID2, -2]]
    assert (m.account(A).underlying, m.account(C).underlying) == (5, 5)
    m.apply(ev("PositionSettled", account=A, series_id=SID, size=2, payoff=7))
    assert m.account(A).positions == [[SID2, -3]]
    assert m.account(A).shares == 7
    with pytest.raises(MirrorError, match="holds no series"):
        m.apply(ev("PositionSettled", account=A, series_id=SID, size=2, payoff=7))


def test_swap_uses_token_scales():
    m = mirror()
    m.apply(ev("Deposit", account=A, payer=A, token=USD, amount=3000, amount_wad=3000 * 10**12))
    m.apply(ev("Swap", account=A, token_in=USD, amount_in=1000, amount_out=3 * 10**17))
    a = m.account(A)
    assert (a.shares, a.underlying) == (2000 * 10**12, 3 * 10**17)
    m.apply(ev("Swap", account=A, token_in=WETH, amount_in=10**17, amount_out=333))
    assert (a.shares, a.underlying) == (2333 * 10**12, 2 * 10**17)


def test_auctions_series_settlement_and_touched_rows():
    m = mirror()
    m.apply(ev("SeriesListed", series_id=SID, expiry=EXPIRY, strike=3000 * WAD, is_call=True))
    m.apply(ev("SeriesListed", series_id=SID3, expiry=EXPIRY + 3600, strike=1, is_call=True))
    assert m.expiries == [EXPIRY, EXPIRY + 3600] and m.listed == {SID, SID3}
    m.apply(ev("AuctionStarted", ts=1234, account=A, witness=3, health=-1, maybe_insolvent=False))
    m.apply(
        ev("Bid", account=A, bidder=B, fraction=1, mtm=0, health=0, discount=0, price=0, fund_fee=0)
    )
    assert m.account(A).auction_start == 1234
    assert list(m.auction_start) == [1234, 0]
    assert list(m.take_touched()) == [0, 1]
    assert list(m.take_touched()) == []
    m.apply(ev("AuctionEnded", account=A))
    assert m.account(A).auction_start == 0 and list(m.take_touched()) == [0]
    m.apply(ev("ExpirySettled", expiry=EXPIRY, price=3100 * WAD))
    assert m.settlement == {EXPIRY: 3100 * WAD} and m.market_epoch == 3
    with pytest.raises(MirrorError, match="timestamp"):
        m.apply(ev("AuctionStarted", account=A, witness=3, health=-1, maybe_insolvent=False))
    m.apply(ev("Paused", paused=True))  # not a balance event: ignored
    m.apply(ev("OperatorSet", account=B, operator=C, allowed=True))
    m.apply(ev("OperatorSet", account=A, operator=C, allowed=True))
    m.apply(ev("OperatorSet", account=A, operator=C, allowed=False))
    assert m.operated_by(C.upper().replace("0X", "0x")) == [1]
    assert Mirror.from_checkpoint(m.to_checkpoint()).operated_by(C) == [1]


def _book() -> Mirror:
    m = mirror()
    for who, usd in ((A, 5000), (B, 8000), (C, 300)):
        m.apply(ev("Deposit", account=who, payer=who, token=USD, amount=usd, amount_wad=usd * WAD))
    m.apply(fill(A, B, SID, False, 2 * WAD, 150 * WAD))
    m.apply(fill(C, B, SID2, False, WAD, 40 * WAD))
    m.apply(fill(A, C, SID3, True, WAD, 20 * WAD))
    return m


MARKET = km.Market(
    spot=3000.0,
    confidence=1.0,
    now=EXPIRY - 30 * 86400,
    expiries=np.array([EXPIRY, EXPIRY + 3600]),
    atm=np.array([0.8, 0.75]),
    skew=np.array([-0.1, -0.1]),
    settlement=np.array([np.nan, np.nan]),
    vol_min=0.05,
    vol_max=5.0,
)
# The test deployment's risk parameters with a higher sigma_ref floor.
PARAMS = replace(MARGIN_PARAMS, ref_vol=0.8)


def test_evaluate_all_and_incremental_equal_keeper_margin():
    m = _book()
    rows = m.evaluate(MARKET, PARAMS)
    assert list(rows) == [0, 1, 2]
    direct = km.evaluate(m.portfolios([0, 1, 2]), MARKET, PARAMS)
    np.testing.assert_array_equal(m.evaluation.health_mm, direct.health_mm)
    np.testing.assert_array_equal(m.evaluation.mtm, direct.mtm)
    np.testing.assert_array_equal(m.evaluation.witness_mm, direct.witness_mm)
    # The float rows are the exact state / 1e18: A 5000 + 150 - 20, B 8000 - 150 - 40, C 300 + 60.
    np.testing.assert_array_equal(m.cash_f[:3], [5130.0, 7810.0, 360.0])
    np.testing.assert_array_equal(m.size_f[0, :2], [-2.0, 1.0])
    m.evaluate(MARKET, PARAMS, greeks=True)
    g = km.account_greeks(m.portfolios([0, 1, 2]), MARKET)
    np.testing.assert_array_equal(m.evaluation.delta[:3], g.delta)
    np.testing.assert_array_equal(m.evaluation.vega[:3], g.vega)
    before = m.evaluation.health_mm.copy()
    m.take_touched()
    m.apply(ev("Deposit", account=C, payer=C, token=USD, amount=1, amount_wad=1000 * WAD))
    touched = m.take_touched()
    assert list(touched) == [2]
    m.evaluate(MARKET, PARAMS, touched)
    # Only C moved, by exactly its deposit (cash adds to every scenario).
    assert m.evaluation.health_mm[0] == before[0] and m.evaluation.health_mm[1] == before[1]
    assert m.evaluation.health_mm[2] == pytest.approx(before[2] + 1000.0, abs=1e-9)
    assert m.holders_of([EXPIRY + 3600]).tolist() == [0, 2]


def test_checkpoint_round_trip_is_exact():
    m = _book()
    m.apply(ev("Accrued", supply_index=WAD - 12345, borrow_index=WAD))
    m.sync()
    # The share price change re-values every positive balance (vectorized); debts stay.
    price = (WAD - 12345) / WAD
    np.testing.assert_allclose(
        m.cash_f[:3], [5130.0 * price, 7810.0 * price, 360.0 * price], rtol=1e-15
    )
    m.last_block, m.last_block_hash = 42, "0xabc"
    data = json.loads(json.dumps(m.to_checkpoint({"chain_id": 31337})))
    again = Mirror.from_checkpoint(data)
    assert again.to_checkpoint({"chain_id": 31337}) == data
    assert data["meta"] == {"chain_id": 31337} and data["last_block"] == 42
    assert again.account(B).positions == m.account(B).positions
    with pytest.raises(MirrorError, match="version"):
        Mirror.from_checkpoint({"version": 0})
    with pytest.raises(MirrorError, match="malformed"):
        Mirror.from_checkpoint({**data, "accounts": [{"address": A}]})


def test_widens_beyond_the_initial_width():
    m = Mirror(USD, WETH, 10**12, 1, width=1, shard_size=8)
    m.apply(fill(A, B, SID, True, WAD, 0))
    m.apply(fill(A, B, SID2, True, WAD, 0))
    m.sync()
    assert m.width == 2
    np.testing.assert_array_equal(m.size_f[0], [1.0, 1.0])


# --- the perp -----------------------------------------------------------------------------------

PERP_PARAMS = kp.PerpParams(WAD // 50, 1800, 8, WAD // 2000)
T0 = MARKET.now - 7200
S0 = 3000 * WAD


def _perp_book() -> tuple[Mirror, kp.PerpBook]:
    """A mirror fed the events a PerpBook emits, made by its twin (the contract's rules): a
    listing, A buying 2 from B at 3,030 an hour later (a premium), and an hour of funding
    settled into A's cash at 3,100."""
    m = mirror()
    for who, usd in ((A, 5000), (B, 8000)):
        m.apply(ev("Deposit", account=who, payer=who, token=USD, amount=usd, amount_wad=usd * WAD))
    book = kp.PerpBook.listed(PERP_PARAMS.pack(), T0)
    m.apply(ev("PerpListed", params=PERP_PARAMS.pack(), time=T0))
    t1, price = T0 + 3600, 3030 * WAD
    buyer_cash, seller_cash = book.fill(A.lower(), B.lower(), 2 * WAD, price, S0, t1)
    m.apply(fill(A, B, PERP_ID, True, 2 * WAD, 0))
    m.apply(
        ev(
            "PerpFill", ts=t1, buyer=A, seller=B, size=2 * WAD, price=price, spot=S0, time=t1,
            buyer_cash=buyer_cash, seller_cash=seller_cash,
        )
    )  # fmt: skip
    t2, s2 = t1 + 3600, 3100 * WAD
    cash = book.settle(A.lower(), s2, t2)
    m.apply(ev("PerpSettled", ts=t2, account=A, spot=s2, time=t2, cash=cash))
    return m, book


def test_perp_events_settle_into_cash_and_store_positions():
    m, book = _perp_book()
    a, b = m.account(A), m.account(B)
    # The perp takes no option slot: the engine's Fill of the perp id is PerpBook's to apply.
    assert a.positions == [] and b.positions == []
    assert b.perp == (-2 * WAD, S0, 0)
    pa = book.positions[A.lower()]
    assert a.perp == (pa.size, pa.price, pa.index) and pa.price == 3100 * WAD and pa.index > 0
    # A paid 2 x 30 at the fill, then settled 2 x 100 less an hour of funding (the twin's sum
    # of both); the share price is 1.
    settled = book.cash[A.lower()] + 60 * WAD
    assert settled == (2 * WAD * 100 * WAD - 2 * WAD * pa.index) // WAD
    assert a.shares == 5000 * WAD - 60 * WAD + settled
    assert b.shares == 8000 * WAD + 60 * WAD
    assert m.perp is not None and m.perp.open_interest == 2 * WAD


def test_perp_margin_terms_follow_the_funding_index_to_the_market_time():
    m, book = _perp_book()
    market = replace(MARKET, spot=3100.0, now=T0 + 3 * 3600)
    m.evaluate(market, PARAMS)
    index = kp.index_at(book.market, 3100 * WAD, market.now) / WAD
    owed_b = book.positions[B.lower()].size / WAD * index  # B's F0 is 0: it never settled
    row_b = m.row(B)
    assert m.perp_owed_f[row_b] == pytest.approx(owed_b, rel=1e-12)
    pf = m.portfolios([row_b])
    expected = km.evaluate(pf, market, PARAMS)
    assert m.evaluation.mtm[row_b] == expected.mtm[0]
    # B is short 2 from 3,000: MtM = cash - 2 x 100 - owed (owed < 0: B receives funding).
    assert owed_b < 0
    assert expected.mtm[0] == pytest.approx(8060.0 - 200.0 - owed_b, abs=1e-9)


def test_perp_event_whose_cash_disagrees_is_drift():
    m, book = _perp_book()
    t3 = T0 + 3 * 3600
    cash = book.settle(B.lower(), S0, t3)
    with pytest.raises(MirrorError, match="PerpSettled"):
        m.apply(ev("PerpSettled", ts=t3, account=B, spot=S0, time=t3, cash=cash + 1))


def test_perp_checkpoint_round_trip_is_exact():
    m, _ = _perp_book()
    data = json.loads(json.dumps(m.to_checkpoint()))
    again = Mirror.from_checkpoint(data)
    assert again.to_checkpoint() == data
    assert again.perp is not None and m.perp is not None
    assert again.perp.market == m.perp.market and again.perp.positions == m.perp.positions
