"""keeper.runtime.mirror: the engine's arithmetic replayed from events, evaluation, checkpoints."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from keeper import margin as km
from keeper.runtime.mirror import WAD, Event, Mirror, MirrorError
from keeper.series import pack_position, series_id
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
    assert a.cash(m.share_price) == -3 * 10**12
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
    m.apply(ev("CashSharePrice", share_price=WAD // 3))  # 0.333... per share
    assert m.market_epoch == 1
    a = m.account(A)
    assert a.cash(m.share_price) == 10 * WAD * (WAD // 3) // WAD
    # A debit of 1 USD burns ceil(1e36 / price) shares.
    m.apply(ev("CashMoved", sender=A, receiver=B, amount=WAD))
    needed = (WAD * WAD + WAD // 3 - 1) // (WAD // 3)
    assert a.shares == 10 * WAD - needed
    assert m.account(B).shares == WAD * WAD // (WAD // 3)
    m.apply(ev("LossSocialized", receiver=C, amount=2 * WAD))
    assert m.account(C).shares == 2 * WAD * WAD // (WAD // 3)


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
    m.apply(ev("CashSharePrice", share_price=WAD - 12345))
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
