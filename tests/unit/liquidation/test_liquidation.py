"""Liquidator: auctions, capped partial bids, the insurance fund and loss socialization.

The victim sells 10 puts (K = 2,800, one week) to a market maker with 3,000 USD of cash; at
spot 2,700 it is solvent but below maintenance (MtM ~ 1,770, H_MM ~ -766), at 2,200 insolvent
(MtM ~ -2,680). Every amount is checked against the formulas in
contracts/liquidation/Liquidator.vy from the numbers the contract reports (Bid event, engine
views), to the wei.
"""

from __future__ import annotations

from decimal import Decimal

import boa
import pytest

from keeper.liquidation import NO_WITNESS
from tests import protocol as P  # noqa: N812
from tests.conftest import events, load

WAD = 10**18
E7 = P.expiry_in(8)
D_START, D_MAX, DURATION, FUND_SHARE, BUFFER, DUST = P.LIQUIDATION


pytestmark = pytest.mark.usefixtures("isolate")


def addr(name: str) -> str:
    return boa.env.generate_address(name)


@pytest.fixture
def put(proto):
    return proto.engine.list_series(E7, 2800 * WAD, False)


def short_puts(proto, put: int) -> str:
    """An account short 10 puts against 3,000 USD, healthy at spot 3,000."""
    account = P.short_puts(proto, put)
    assert proto.engine.margin(account)[2] > 0
    return account


@pytest.fixture
def victim(proto, put):
    return short_puts(proto, put)


@pytest.fixture
def bidder(proto):
    account = addr("bidder")
    proto.fund(account, usd=50_000)
    return account


def mul_up(x: int, y: int) -> int:
    """x * y / 1e18 rounded toward +infinity (wad.mul_up)."""
    q, r = divmod(x * y, WAD)
    return q + (1 if r else 0)


def fund_insurance(proto, usd: float) -> None:
    payer = addr("insurer")
    amount = int(usd * 10**6)
    proto.usd.mint(payer, amount)
    with boa.env.prank(payer):
        proto.usd.approve(proto.liquidator.address, amount)
        proto.liquidator.deposit_insurance(amount)


def start(proto, account: str, witness: int = NO_WITNESS) -> None:
    proto.liquidator.start_auction(account, witness)


# --- starting auctions ------------------------------------------------------------------------


def test_auction_starts_on_full_check_of_unhealthy_account(proto, victim):
    proto.set_spot(2700)
    h_mm = proto.engine.margin(victim)[2]
    assert h_mm < 0
    start(proto, victim)
    assert proto.liquidator.auction_start(victim) == boa.env.timestamp
    assert proto.liquidator.discount(victim) == D_START
    assert proto.liquidator.open_auctions() == 1


def test_auction_rejects_healthy_account(proto, victim):
    with boa.reverts("liquidator: healthy"):
        start(proto, victim)
    assert proto.liquidator.auction_start(victim) == 0


def test_auction_rejects_account_without_positions(proto):
    alice = addr("alice")
    proto.fund(alice, usd=10)
    with boa.reverts("liquidator: healthy"):
        start(proto, alice)


def test_auction_starts_on_witness(proto, victim):
    proto.set_spot(2700)
    witness = proto.engine.health(victim, False)[1]
    assert proto.engine.scenario_health(victim, witness, False) < 0
    start(proto, victim, witness)
    assert proto.liquidator.auction_start(victim) == boa.env.timestamp
    assert proto.liquidator.open_auctions() == 1


def test_auction_rejects_wrong_witness(proto, victim):
    proto.set_spot(2700)
    # The top spot point at the flat vol state: the short put gains there.
    n = P.GRID[0]
    witness = 1 * (2 * n + 1) + (n + n)
    assert proto.engine.scenario_health(victim, witness, False) >= 0
    with boa.reverts("liquidator: witness does not prove"):
        start(proto, victim, witness)


def test_auction_rejects_witness_outside_grid(proto, victim):
    proto.set_spot(2700)
    n = P.GRID[0]
    with boa.reverts("risk: bad scenario"):
        start(proto, victim, 3 * (2 * n + 1))


def test_auction_cannot_start_twice(proto, victim):
    proto.set_spot(2700)
    start(proto, victim)
    with boa.reverts("liquidator: auction open"):
        start(proto, victim)


def test_auction_discount_grows_linearly_to_its_maximum(proto, victim):
    proto.set_spot(2700)
    start(proto, victim)
    boa.env.time_travel(seconds=DURATION // 2)
    assert (
        proto.liquidator.discount(victim)
        == D_START + (D_MAX - D_START) * (DURATION // 2) // DURATION
    )
    boa.env.time_travel(seconds=DURATION)
    assert proto.liquidator.discount(victim) == D_MAX
    assert proto.liquidator.discount(addr("nobody")) == 0


def test_auction_in_sequencer_grace_needs_the_grace_buffer(proto, victim):
    proto.set_spot(2700)
    h_mm = proto.engine.margin(victim)[2]  # about -766 USD
    proto.oracle.set_grace_liquidation_buffer(1_000 * WAD)
    proto.sequencer_feed.set_status(True)  # down
    proto.sequencer_feed.set_status(False)  # back up: the grace period starts now
    assert proto.oracle.liquidation_threshold() == -1_000 * WAD
    assert -1_000 * WAD < h_mm < 0
    with boa.reverts("liquidator: healthy"):
        start(proto, victim)
    # Deeper under water than the buffer: liquidation may start during grace.
    proto.set_spot(2600)
    assert proto.engine.margin(victim)[2] < -1_000 * WAD
    start(proto, victim)
    assert proto.liquidator.auction_start(victim) == boa.env.timestamp


def test_witness_auction_in_sequencer_grace_needs_the_grace_buffer_strictly(proto, victim):
    proto.set_spot(2700)
    witness = proto.engine.health(victim, False)[1]
    value = proto.engine.scenario_health(victim, witness, False)
    assert value < 0
    # Outside grace the threshold is 0, whatever the buffer: the uptime feed decides.
    proto.oracle.set_grace_liquidation_buffer(-value)
    with boa.env.anchor():
        start(proto, victim, witness)
        assert proto.liquidator.auction_start(victim) == boa.env.timestamp
    proto.sequencer_feed.set_status(True)  # down
    proto.sequencer_feed.set_status(False)  # back up: the grace period starts now
    # In grace a scenario exactly at -buffer proves nothing (H_MM < -buffer is needed) ...
    with boa.reverts("liquidator: witness does not prove"):
        start(proto, victim, witness)
    # ... and one wei below it does.
    proto.oracle.set_grace_liquidation_buffer(-value - 1)
    start(proto, victim, witness)
    assert proto.liquidator.auction_start(victim) == boa.env.timestamp


# --- bids on solvent accounts -----------------------------------------------------------------


def test_auction_bid_is_capped_at_the_buffer(proto, victim, bidder, put):
    proto.set_spot(2700)
    start(proto, victim)
    mtm, _, h = proto.engine.margin(victim)
    with boa.env.prank(bidder):
        taken, outlay = proto.liquidator.bid(victim, WAD, 2**255 - 1)
    p = mtm * (WAD - D_START) // WAD
    cap = -(-(BUFFER - h) * WAD // (p - h))  # ceil
    assert taken == cap < WAD
    # The account's H_MM comes back to the buffer (linear in the fraction; sizes round down).
    h_after = proto.engine.margin(victim)[2]
    assert BUFFER <= h_after <= BUFFER + WAD // 10**6
    # Sizes moved exactly (rounded toward zero), cash paid as the formula says.
    moved = 10 * WAD * taken // WAD
    assert P.position_ids(proto.engine, bidder) == ([put], [-moved])
    assert P.position_ids(proto.engine, victim) == ([put], [-(10 * WAD - moved)])
    price = mul_up(mtm, mul_up(taken, WAD - D_START))
    fee = mul_up(mul_up(mtm, mul_up(taken, D_START)), FUND_SHARE)
    assert outlay == price + fee
    assert proto.liquidator.insurance_fund() == fee
    # The bid restored H_MM >= 0: it ended the auction (a later shortfall starts a new one,
    # whose discount starts again at d_start).
    assert proto.liquidator.auction_start(victim) == 0
    assert proto.liquidator.open_auctions() == 0


def test_auction_bid_never_lowers_the_accounts_health(proto, victim, bidder):
    proto.set_spot(2700)
    start(proto, victim)
    h_before = proto.engine.margin(victim)[2]
    with boa.env.prank(bidder):
        proto.liquidator.bid(victim, WAD // 10, 2**255 - 1)
    h_after = proto.engine.margin(victim)[2]
    assert h_before < h_after < 0  # a tenth of the cap: better, not yet healthy


@pytest.mark.parametrize("fraction", [WAD // 10, WAD // 7])  # below the cap (about 17.6%)
def test_auction_bid_moves_every_collateral_and_cash(proto, victim, bidder, fraction):
    proto.fund(victim, usd=0.000001, weth=0.5)  # one micro-dollar: cash x 1/7 is not whole
    proto.set_spot(2600)
    start(proto, victim)
    cash = proto.engine.cash(victim)
    mtm = proto.engine.margin(victim)[0]
    with boa.env.prank(bidder):
        taken, _ = proto.liquidator.bid(victim, fraction, 2**255 - 1)
    assert taken == fraction
    underlying = 5 * WAD // 10 * fraction // WAD
    assert proto.engine.underlying_balance(bidder) == underlying
    assert proto.engine.underlying_balance(victim) == 5 * WAD // 10 - underlying
    price = mul_up(mtm, mul_up(fraction, WAD - D_START))
    assert cash > 0
    cash_taken = cash * fraction // WAD  # positive cash: the bidder's share rounds down
    # The victim keeps the rest of its cash and receives the price, to the wei (the share price
    # is still 1, so cash shares are exact).
    assert proto.engine.cash(victim) == cash - cash_taken + price


def test_auction_bid_discount_grows_over_time(proto, victim, bidder):
    proto.set_spot(2700)
    start(proto, victim)
    boa.env.time_travel(seconds=DURATION)
    mtm = proto.engine.margin(victim)[0]
    fraction = WAD // 10
    with boa.env.prank(bidder):
        _, outlay = proto.liquidator.bid(victim, fraction, 2**255 - 1)
    price = mul_up(mtm, mul_up(fraction, WAD - D_MAX))
    fee = mul_up(mul_up(mtm, mul_up(fraction, D_MAX)), FUND_SHARE)
    assert outlay == price + fee


def test_auction_bid_respects_price_limit(proto, victim, bidder):
    proto.set_spot(2700)
    start(proto, victim)
    mtm = proto.engine.margin(victim)[0]
    fraction = WAD // 10
    outlay = mul_up(mtm, mul_up(fraction, WAD - D_START)) + mul_up(
        mul_up(mtm, mul_up(fraction, D_START)), FUND_SHARE
    )
    with boa.env.prank(bidder), boa.reverts("liquidator: price above limit"):
        proto.liquidator.bid(victim, fraction, outlay - 1)
    with boa.env.prank(bidder):
        assert proto.liquidator.bid(victim, fraction, outlay) == (fraction, outlay)


def test_auction_bidder_below_initial_margin_rejected(proto, victim):
    proto.set_spot(2700)
    start(proto, victim)
    poor = addr("poor")
    proto.fund(poor, usd=50)
    with boa.env.prank(poor), boa.reverts("liquidator: bidder below initial margin"):
        proto.liquidator.bid(victim, WAD, 2**255 - 1)


def test_auction_thin_bidder_is_judged_by_the_full_grid(proto, victim):
    # 400 USD covers a tenth of the victim's IM but not the floor (each put at its strike):
    # the bid passes on the grid, and the bidder's floor is below zero afterwards.
    proto.set_spot(2700)
    start(proto, victim)
    thin = addr("thin")
    proto.fund(thin, usd=400)
    with boa.env.prank(thin):
        proto.liquidator.bid(victim, WAD // 10, 2**255 - 1)
    assert proto.health_floor(thin) < 0
    assert proto.engine.health(thin, True)[0] >= 0


def test_auction_dust_account_goes_whole(proto, victim, bidder):
    proto.set_spot(2700)
    proto.liquidator.set_params(D_START, D_MAX, DURATION, FUND_SHARE, BUFFER, 5_000 * WAD)
    start(proto, victim)
    with boa.env.prank(bidder):
        taken, _ = proto.liquidator.bid(victim, WAD, 2**255 - 1)
    assert taken == WAD
    assert proto.engine.packed_positions(victim) == []
    assert proto.liquidator.auction_start(victim) == 0  # a whole-account bid ends it


def test_auction_goes_whole_when_the_capped_remainder_would_be_dust(proto, victim, bidder):
    # MtM above dust, but what the capped bid would leave behind is not: the bidder takes all.
    proto.set_spot(2700)
    mtm, _, h = proto.engine.margin(victim)
    p = mtm * (WAD - D_START) // WAD
    cap = -(-(BUFFER - h) * WAD // (p - h))
    remainder = mtm * (WAD - cap) // WAD
    dust = (remainder + mtm) // 2  # remainder <= dust < MtM
    proto.liquidator.set_params(D_START, D_MAX, DURATION, FUND_SHARE, BUFFER, dust)
    start(proto, victim)
    with boa.env.prank(bidder):
        taken, _ = proto.liquidator.bid(victim, WAD, 2**255 - 1)
    assert taken == WAD
    assert proto.engine.packed_positions(victim) == []


@pytest.mark.parametrize(
    ("fraction", "reason"),
    [(0, "liquidator: bad fraction"), (WAD + 1, "liquidator: bad fraction")],
)
def test_auction_bid_bad_fraction(proto, victim, bidder, fraction, reason):
    proto.set_spot(2700)
    start(proto, victim)
    with boa.env.prank(bidder), boa.reverts(reason):
        proto.liquidator.bid(victim, fraction, 2**255 - 1)


def test_auction_bid_needs_an_auction_and_another_account(proto, victim, bidder):
    proto.set_spot(2700)
    with boa.env.prank(bidder), boa.reverts("liquidator: no auction"):
        proto.liquidator.bid(victim, WAD, 2**255 - 1)
    start(proto, victim)
    with boa.env.prank(victim), boa.reverts("liquidator: self bid"):
        proto.liquidator.bid(victim, WAD, 2**255 - 1)


def test_auction_bid_on_recovered_account_rejected_then_ended(proto, victim, bidder):
    proto.set_spot(2700)
    start(proto, victim)
    with boa.reverts("liquidator: unhealthy"):
        proto.liquidator.end_auction(victim)
    proto.set_spot(3000)
    with boa.env.prank(bidder), boa.reverts("liquidator: healthy"):
        proto.liquidator.bid(victim, WAD, 2**255 - 1)
    proto.liquidator.end_auction(victim)
    assert proto.liquidator.auction_start(victim) == 0
    with boa.reverts("liquidator: no auction"):
        proto.liquidator.end_auction(victim)


def test_a_capped_bid_ends_the_auction_and_a_new_shortfall_starts_afresh(proto, victim, bidder):
    proto.set_spot(2700)
    start(proto, victim)
    boa.env.time_travel(seconds=DURATION // 2)
    with boa.env.prank(bidder):
        proto.liquidator.bid(victim, WAD, 2**255 - 1)
    assert proto.liquidator.auction_start(victim) == 0
    with boa.reverts("liquidator: no auction"):
        proto.liquidator.end_auction(victim)
    # The next shortfall opens a new auction whose discount starts again at d_start.
    proto.set_spot(2400)
    start(proto, victim)
    assert proto.liquidator.discount(victim) == D_START


# --- insolvent accounts -----------------------------------------------------------------------


def test_insolvent_account_covered_by_insurance_fund(proto, victim, bidder):
    fund_insurance(proto, 20_000)
    proto.set_spot(2200)
    mtm, _, h = proto.engine.margin(victim)
    assert mtm < 0
    victim_cash = proto.engine.cash(victim)
    start(proto, victim)
    # The loss is realized when the full check measures it: the fund pays -MtM into the
    # account, which is then worth exactly zero (cash shares at a price of 1 are exact).
    assert proto.liquidator.insurance_fund() == 20_000 * WAD + mtm
    assert proto.engine.cash(victim) == victim_cash - mtm
    assert proto.engine.margin(victim)[0] == 0
    assert proto.liquidator.open_auctions() == 1
    bidder_cash = proto.engine.cash(bidder)
    with boa.env.prank(bidder):
        taken, outlay = proto.liquidator.bid(victim, WAD, 2**255 - 1)
    reward = (mtm - h) * D_START // WAD
    assert (taken, outlay) == (WAD, -reward)
    assert proto.liquidator.insurance_fund() == 20_000 * WAD + mtm - reward
    assert proto.engine.cash(bidder) == bidder_cash + victim_cash - mtm + reward
    assert proto.liquidator.bad_debt() == 0
    assert proto.engine.cash_share_price() == WAD
    # The victim is empty; the auction is over.
    assert proto.engine.packed_positions(victim) == []
    assert proto.engine.cash(victim) == 0
    assert proto.liquidator.auction_start(victim) == 0
    assert proto.liquidator.open_auctions() == 0


def test_auction_bid_boundary_is_one_wei_of_negative_health():
    """With an 18-decimal cash token a deposit moves H_MM by exactly its amount in wei: at
    H_MM = -1 wei a bid goes through, at H_MM = 0 it is rejected."""
    with boa.env.anchor():
        token = load("tests/contracts/TestToken.vy", "Wad USD", "WUSD", 18)
        p = P.deploy(usd=token)
        p.vol.update(E7, 6 * WAD // 10, 0)
        victim = P.short_puts(p, p.engine.list_series(E7, 2800 * WAD, False))
        bidder = addr("bidder")
        p.fund(bidder, usd=50_000)
        p.set_spot(2700)
        start(p, victim)
        h = p.engine.margin(victim)[2]
        assert h < -1
        p.fund(victim, usd=Decimal(-h - 1) / 10**18)
        assert p.engine.margin(victim)[2] == -1
        with boa.env.anchor():
            p.fund(victim, usd=Decimal(1) / 10**18)
            assert p.engine.margin(victim)[2] == 0
            with boa.env.prank(bidder), boa.reverts("liquidator: healthy"):
                p.liquidator.bid(victim, WAD, 2**255 - 1)
        with boa.env.prank(bidder):
            taken, _ = p.liquidator.bid(victim, WAD, 2**255 - 1)
        assert 0 < taken < WAD  # capped at the buffer
        assert p.engine.margin(victim)[2] >= BUFFER


def test_auction_bid_on_a_borrower_takes_its_debt_share_rounded_down(proto, victim, bidder):
    # Negative cash backed by WETH, off the whole dollar: cash x 1/7 has a remainder.
    proto.fund(victim, usd=0.000001, weth=2)
    with boa.env.prank(victim):
        proto.engine.withdraw(proto.usd.address, 3_800 * 10**6, victim)
    cash = proto.engine.cash(victim)
    assert cash < 0 and cash * (WAD // 7) % WAD != 0
    proto.set_spot(2600)
    start(proto, victim)
    mtm = proto.engine.margin(victim)[0]
    assert mtm > 0
    with boa.env.prank(bidder):
        taken, _ = proto.liquidator.bid(victim, WAD // 7, 2**255 - 1)
    assert taken == WAD // 7
    # The bidder's share of the debt rounds toward -infinity: it takes the extra wei, and
    # the victim's debt shrinks by it (debts are exact in wei).
    cash_taken = cash * taken // WAD  # Python floors
    price = mul_up(mtm, mul_up(taken, WAD - D_START))
    assert proto.engine.cash(victim) == cash - cash_taken + price


def test_auction_bid_settles_expired_positions_before_taking_cash(proto, victim, bidder, put):
    # The victim is also short 10 puts of a later expiry; the first expiry passes and settles
    # in the money (10 x 300 USD owed), so the cash the bid splits is the settled cash.
    later = P.expiry_in(36)
    proto.vol.update(later, 6 * WAD // 10, 0)
    put_later = proto.engine.list_series(later, 2800 * WAD, False)
    maker = P.Maker.new("mm-later")
    proto.fund(maker.address, usd=100_000)
    proto.fund(victim, usd=4_000.000001)
    order = maker.order(put_later, True, 10 * WAD, 90 * WAD)
    with boa.env.prank(victim):
        proto.engine.fill(P.as_tuple(order), maker.sign(proto, order), 10 * WAD, victim)
    boa.env.time_travel(seconds=E7 - boa.env.timestamp + 60)
    proto.set_spot(2500)
    proto.settle_expiry(E7)
    cash_settled = proto.engine.cash(victim) - 10 * 300 * WAD
    assert cash_settled * (WAD // 7) % WAD != 0
    start(proto, victim)
    mtm = proto.engine.margin(victim)[0]
    assert P.position_ids(proto.engine, victim)[0] == [put, put_later]  # not settled yet
    with boa.env.prank(bidder):
        taken, _ = proto.liquidator.bid(victim, WAD // 7, 2**255 - 1)
    assert taken == WAD // 7
    price = mul_up(mtm, mul_up(taken, WAD - D_START))
    assert proto.engine.cash(victim) == cash_settled - cash_settled * taken // WAD + price
    moved = 10 * WAD * taken // WAD
    assert P.position_ids(proto.engine, victim) == ([put_later], [-(10 * WAD - moved)])
    assert P.position_ids(proto.engine, bidder) == ([put_later], [-moved])


def socialized_cut(proto, receiver: str, amount: int, received: int = 0) -> int:
    """The share-price cut MarginEngine.socialize_loss makes for `amount` (the receiver's own
    shares, `received` more than now, left out), rounded up against the other balances."""
    own = proto.engine.cash_shares(receiver) + received
    others = proto.engine.total_cash_shares() - own
    return min(-(-amount * WAD // others), proto.engine.cash_share_price() - 1)


def test_insolvent_account_beyond_fund_is_socialized(proto, victim, bidder):
    fund_insurance(proto, 500)
    # A borrower: negative cash backed by underlying; its debt must not shrink.
    borrower = addr("borrower")
    proto.fund(borrower, weth=2)
    with boa.env.prank(borrower):
        proto.engine.withdraw(proto.usd.address, 1_000 * 10**6, borrower)
    debt = proto.engine.cash_debt(borrower)
    assert debt == 1_000 * WAD
    saver = addr("saver")
    proto.fund(saver, usd=10_000)
    proto.set_spot(2200)
    mtm, _, h = proto.engine.margin(victim)
    saver_shares = proto.engine.cash_shares(saver)
    shortfall = -mtm - 500 * WAD
    # The fund's 500 USD reach the victim first (as shares at a price of 1), then the rest is
    # socialized over the others.
    price = WAD - socialized_cut(proto, victim, shortfall, received=500 * WAD)
    start(proto, victim)
    assert ("BadDebt", {"account": victim, "amount": shortfall}) in events(proto.liquidator)
    assert proto.engine.cash_share_price() == price
    assert proto.engine.margin(victim)[0] >= -1  # worth zero, to the share price's rounding
    reward = (mtm - h) * D_START // WAD
    # The bidder takes the victim's shares with the account, then is paid its reward.
    price -= socialized_cut(proto, bidder, reward, received=proto.engine.cash_shares(victim))
    bidder_before = proto.engine.cash(bidder)
    victim_cash = proto.engine.cash(victim)
    with boa.env.prank(bidder):
        proto.liquidator.bid(victim, WAD, 2**255 - 1)
    assert ("BadDebt", {"account": victim, "amount": reward}) in events(proto.liquidator)
    # The bid measures the account again: the wei or two its cash lost to the new share price
    # are realized too.
    assert 0 <= proto.liquidator.bad_debt() - (shortfall + reward) <= 2
    # Positive balances lost the shortfalls pro rata; the debt is untouched; the bidder was
    # credited its whole reward (its own balance is left out of the socialization).
    assert proto.engine.cash_debt(borrower) == debt
    final = proto.engine.cash_share_price()
    assert price - 2 <= final <= price
    assert proto.engine.cash(saver) == saver_shares * final // WAD
    # (To the share price's rounding: a few wei per cash move below a price of 1.)
    assert abs(proto.engine.cash(bidder) - (bidder_before + victim_cash + reward)) <= 10**6
    assert proto.liquidator.insurance_fund() == 0


def test_bidder_is_never_charged_its_own_reward(proto, victim):
    """Finding 8: with an empty fund the reward was socialized over every positive balance,
    the bidder's included: a bidder holding 20,000 beside a 50,000 saver lost 906.61."""
    bidder, saver = addr("rich-bidder"), addr("big-saver")
    proto.fund(bidder, usd=20_000)
    proto.fund(saver, usd=50_000)
    proto.set_spot(2200)
    start(proto, victim)
    mtm, _, h = proto.engine.margin(victim)
    assert mtm >= -1
    before = proto.engine.cash(bidder)
    victim_cash = proto.engine.cash(victim)
    with boa.env.prank(bidder):
        _, outlay = proto.liquidator.bid(victim, WAD, 2**255 - 1)
    reward = -outlay
    assert reward == (mtm - h) * D_START // WAD > 0
    assert abs(proto.engine.cash(bidder) - (before + victim_cash + reward)) <= 10**6


def test_loss_is_realized_when_measured_so_later_deposits_do_not_pay(proto, victim, bidder):
    """Finding 9: an insolvent auction was public; 20,000 USD deposited before the bid paid
    381.54 of the 2,728.02 bad debt. The loss is realized at the full check that opens the
    auction: a later depositor shares only in the bidder's reward."""
    saver = addr("early-saver")
    proto.fund(saver, usd=50_000)
    proto.set_spot(2200)
    mtm, _, h = proto.engine.margin(victim)
    start(proto, victim)
    assert proto.liquidator.bad_debt() == -mtm
    late = addr("late-depositor")
    proto.fund(late, usd=20_000)
    with boa.env.prank(bidder):
        proto.liquidator.bid(victim, WAD, 2**255 - 1)
    reward = (mtm - h) * D_START // WAD
    lost = 20_000 * WAD - proto.engine.cash(late)
    pool = proto.engine.total_cash_shares() * proto.engine.cash_share_price() // WAD
    # At most its pro-rata share of the reward (plus rounding), never of the realized -MtM.
    assert 0 < lost <= reward * 20_000 * WAD // (pool - proto.engine.cash(bidder)) + 10**6
    assert lost < (-mtm) // 10


def test_insolvent_account_with_an_empty_fund_is_socialized_whole(proto, victim, bidder):
    # No insurance: the fund pays nothing (not even a wei it does not have); the realized loss
    # and the reward are bad debt.
    proto.set_spot(2200)
    mtm, _, h = proto.engine.margin(victim)
    start(proto, victim)
    with boa.env.prank(bidder):
        proto.liquidator.bid(victim, WAD, 2**255 - 1)
    reward = (mtm - h) * D_START // WAD
    # The bid measures the account again: the wei its cash lost to the new share price is
    # realized too.
    assert 0 <= proto.liquidator.bad_debt() - (-mtm + reward) <= 2
    assert proto.engine.cash(proto.liquidator.address) == 0
    assert proto.liquidator.insurance_fund() == 0


def test_insolvent_bid_takes_the_last_wei_of_cash(proto, put, bidder):
    # An account whose only cash is a 1-wei premium (1 put sold at 1 wei) against 1 WETH: after
    # a crash it is insolvent, and the whole-account bid moves its cash (the wei and the
    # realized loss) to the bidder too.
    maker, account = P.Maker.new("mm"), addr("thin")
    proto.fund(maker.address, usd=100_000)
    proto.fund(account, weth=1)
    order = maker.order(put, True, WAD, 1)
    with boa.env.prank(account):
        proto.engine.fill(P.as_tuple(order), maker.sign(proto, order), WAD, account)
    assert proto.engine.cash(account) == 1
    fund_insurance(proto, 20_000)  # covers everything: no socialization blurs the wei
    proto.set_spot(1000)
    mtm, _, h = proto.engine.margin(account)
    assert mtm < 0
    start(proto, account)
    assert proto.engine.cash(account) == 1 - mtm
    before = proto.engine.cash(bidder)
    with boa.env.prank(bidder):
        proto.liquidator.bid(account, WAD, 2**255 - 1)
    assert proto.engine.cash(account) == 0
    reward = (mtm - h) * D_START // WAD
    assert proto.engine.cash(bidder) == before + 1 - mtm + reward


def test_insolvent_account_can_be_shared_by_small_bidders(proto, victim):
    """Finding 7: an insolvent account had to go whole, so two bidders with 2,000 USD each could
    not liquidate one at MtM -2,680. Fractions of any size now go through."""
    fund_insurance(proto, 20_000)
    proto.set_spot(2200)
    start(proto, victim)
    small = [addr("small-1"), addr("small-2")]
    for b in small:
        proto.fund(b, usd=2_000)
    with boa.env.prank(small[0]):
        assert proto.liquidator.bid(victim, WAD // 2, 2**255 - 1)[0] == WAD // 2
    assert proto.liquidator.auction_start(victim) != 0
    with boa.env.prank(small[1]):
        assert proto.liquidator.bid(victim, WAD, 2**255 - 1)[0] == WAD
    assert proto.engine.packed_positions(victim) == []
    assert proto.liquidator.auction_start(victim) == 0


def test_loss_beyond_the_cash_pool_is_a_recorded_deficit(proto, put, bidder):
    """Finding 7: with a WETH-collateralised book and a cash pool of 320 USD, every bid on an
    account at MtM -3,280 reverted "engine: loss exceeds cash pool". The part beyond the pool
    is now recorded as the engine's deficit and the liquidation goes through."""
    with boa.env.anchor():
        p = P.deploy()
        p.vol.update(E7, 6 * WAD // 10, 0)
        put = p.engine.list_series(E7, 2800 * WAD, False)
        maker, account = P.Maker.new("weth-mm"), addr("weth-writer")
        p.fund(maker.address, weth=100)
        p.fund(account, weth=2)
        order = maker.order(put, True, 10 * WAD, 32 * WAD)
        with boa.env.prank(account):
            p.engine.fill(P.as_tuple(order), maker.sign(p, order), 10 * WAD, account)
        bidder = addr("weth-bidder")
        p.fund(bidder, weth=50)
        p.set_spot(1200)
        mtm = p.engine.margin(account)[0]
        pool = p.engine.total_cash_shares() * p.engine.cash_share_price() // WAD
        assert -mtm > pool
        start(p, account)
        assert p.engine.deficit() > 0
        assert p.liquidator.bad_debt() == -mtm
        with boa.env.prank(bidder):
            assert p.liquidator.bid(account, WAD, 2**255 - 1)[0] == WAD
        assert p.engine.packed_positions(account) == []


# --- insurance fund ---------------------------------------------------------------------------


def test_insurance_deposit_and_owner_withdrawal(proto):
    fund_insurance(proto, 1_000)
    assert proto.liquidator.insurance_fund() == 1_000 * WAD
    receiver = addr("treasury")
    with boa.env.prank(addr("stranger")), boa.reverts("ownable: not owner"):
        proto.liquidator.withdraw_insurance(10**6, receiver)
    proto.liquidator.withdraw_insurance(400 * 10**6, receiver)
    assert proto.usd.balanceOf(receiver) == 400 * 10**6
    assert proto.liquidator.insurance_fund() == 600 * WAD
    with boa.reverts("engine: below initial margin"):
        proto.liquidator.withdraw_insurance(601 * 10**6, receiver)
    with boa.reverts("liquidator: zero amount"):
        proto.liquidator.deposit_insurance(0)


def test_insurance_withdrawal_blocked_while_any_auction_is_open(proto, victim, bidder):
    fund_insurance(proto, 20_000)
    # A solvent auction blocks too: the next price move can make it insolvent.
    proto.set_spot(2700)
    start(proto, victim, proto.engine.health(victim, False)[1])
    with boa.reverts("liquidator: auction open"):
        proto.liquidator.withdraw_insurance(10**6, addr("treasury"))
    proto.set_spot(2200)
    with boa.reverts("liquidator: auction open"):
        proto.liquidator.withdraw_insurance(10**6, addr("treasury"))
    with boa.env.prank(bidder):
        proto.liquidator.bid(victim, WAD, 2**255 - 1)
    assert proto.liquidator.open_auctions() == 0
    proto.liquidator.withdraw_insurance(10**6, addr("treasury"))


# --- authorisation, parameters, reentrancy -----------------------------------------------------


def test_only_the_liquidator_moves_portfolios_or_socializes(proto, victim, bidder):
    with boa.env.prank(bidder):
        with boa.reverts("engine: not liquidator"):
            proto.engine.move_portfolio(victim, bidder, WAD)
        with boa.reverts("engine: not liquidator"):
            proto.engine.move_cash(victim, bidder, WAD)
        with boa.reverts("engine: not liquidator"):
            proto.engine.socialize_loss(bidder, WAD)


def test_liquidator_params_within_bounds(proto):
    with boa.env.prank(addr("stranger")), boa.reverts("ownable: not owner"):
        proto.liquidator.set_params(*P.LIQUIDATION)
    for bad in (
        (D_MAX + 1, D_MAX, DURATION, FUND_SHARE, BUFFER, DUST),  # start above max
        (D_START, WAD // 2 + 1, DURATION, FUND_SHARE, BUFFER, DUST),  # max above 50%
        (D_START, D_MAX, 59, FUND_SHARE, BUFFER, DUST),
        (D_START, D_MAX, 7 * 86400 + 1, FUND_SHARE, BUFFER, DUST),
        (D_START, D_MAX, DURATION, WAD + 1, BUFFER, DUST),
        (D_START, D_MAX, DURATION, FUND_SHARE, 10**27 + 1, DUST),
        (D_START, D_MAX, DURATION, FUND_SHARE, BUFFER, 10**27 + 1),
    ):
        with boa.reverts("liquidator: bad params"):
            proto.liquidator.set_params(*bad)
    proto.liquidator.set_params(0, WAD // 2, 60, WAD, 0, 0)
    assert proto.liquidator.d_max() == WAD // 2


def test_liquidation_reentrancy_through_a_hostile_token_is_locked_out():
    """A cash token that calls Liquidator.bid from inside a transfer the Liquidator makes: the
    very call that succeeds on its own fails inside the lock, and with it the outer deposit."""
    with boa.env.anchor():
        token = load("tests/contracts/TestToken.vy", "Hostile USD", "HUSD", 6)
        p = P.deploy(usd=token)
        p.vol.update(E7, 6 * WAD // 10, 0)
        victim = short_puts(p, p.engine.list_series(E7, 2800 * WAD, False))
        p.set_spot(2700)
        p.liquidator.start_auction(victim, NO_WITNESS)
        # The token itself bids (its engine account holds cash).
        token.mint(p.admin, 50_000 * 10**6)
        token.approve(p.engine.address, 50_000 * 10**6)
        p.engine.deposit_for(token.address, token.address, 50_000 * 10**6)
        reentry = p.liquidator.bid.prepare_calldata(victim, WAD // 10, 2**255 - 1)
        with boa.env.anchor(), boa.env.prank(token.address):
            assert p.liquidator.bid(victim, WAD // 10, 2**255 - 1)[0] == WAD // 10
        payer = addr("payer")
        token.mint(payer, 10**6)
        with boa.env.prank(payer):
            token.approve(p.liquidator.address, 10**6)
        token.set_hook(p.liquidator.address, reentry)
        with boa.env.prank(payer), boa.reverts():
            p.liquidator.deposit_insurance(10**6)
        assert p.liquidator.insurance_fund() == 0
        assert p.engine.packed_positions(token.address) == []
        token.set_hook("0x" + "00" * 20, b"")
        with boa.env.prank(payer):
            p.liquidator.deposit_insurance(10**6)
        assert p.liquidator.insurance_fund() == WAD


def test_liquidation_hooks_reject_bad_moves_and_oversized_losses(proto, victim, bidder):
    with boa.env.prank(proto.liquidator.address):
        for account, receiver, fraction in (
            (victim, bidder, 0),
            (victim, bidder, WAD + 1),
            (victim, victim, WAD),
        ):
            with boa.reverts("engine: bad move"):
                proto.engine.move_portfolio(account, receiver, fraction)
        # A loss beyond every other balance leaves the price at 1 wei a share and the rest as
        # a deficit; the receiver is credited in full.
        others = proto.engine.total_cash_shares() - proto.engine.cash_shares(bidder)
        pool = others * proto.engine.cash_share_price() // WAD
        before = proto.engine.cash(bidder)
        proto.engine.socialize_loss(bidder, 2 * pool)
    assert proto.engine.cash_share_price() == 1
    assert proto.engine.deficit() == 2 * pool - others * (WAD - 1) // WAD
    assert proto.engine.cash(bidder) >= before + 2 * pool - 1


def test_insurance_deposit_rejects_a_token_that_reports_failure():
    """A cash token whose transferFrom or approve returns False: the deposit reverts with the
    step that failed and the fund is unchanged; once the token behaves, the same deposit lands."""
    with boa.env.anchor():
        token = load("tests/contracts/TestToken.vy", "Flaky USD", "FUSD", 6)
        p = P.deploy(usd=token)
        payer = addr("payer")
        token.mint(payer, 10**6)
        with boa.env.prank(payer):
            token.approve(p.liquidator.address, 10**6)
        for transfers, approvals, reason in (
            (True, False, "liquidator: transfer failed"),
            (False, True, "liquidator: approve failed"),
        ):
            token.set_failures(transfers, approvals)
            with boa.env.prank(payer), boa.reverts(reason):
                p.liquidator.deposit_insurance(10**6)
            assert p.liquidator.insurance_fund() == 0
            assert token.balanceOf(payer) == 10**6
        token.set_failures(False, False)
        with boa.env.prank(payer):
            p.liquidator.deposit_insurance(10**6)
        assert p.liquidator.insurance_fund() == WAD
        assert token.balanceOf(payer) == 0


def test_insurance_and_engine_accept_a_cash_token_that_returns_nothing():
    """A USDT-style cash token (transfer, transferFrom and approve return no data): the
    insurance deposit (transferFrom, then approve to the engine) and an engine deposit and
    withdrawal all go through, to the unit."""
    with boa.env.anchor():
        token = load("tests/contracts/SilentToken.vy", "Silent USD", "SUSD", 6)
        p = P.deploy(usd=token)
        payer = addr("payer")
        token.mint(payer, 3 * 10**6)
        with boa.env.prank(payer):
            token.approve(p.liquidator.address, 10**6)
            p.liquidator.deposit_insurance(10**6)
        assert p.liquidator.insurance_fund() == WAD
        assert token.allowance(p.liquidator.address, p.engine.address) == 0  # spent by the deposit
        with boa.env.prank(payer):
            token.approve(p.engine.address, 2 * 10**6)
            p.engine.deposit(token.address, 2 * 10**6)
            p.engine.withdraw(token.address, 5 * 10**5, payer)
        assert p.engine.cash(payer) == 3 * WAD // 2
        assert token.balanceOf(payer) == 5 * 10**5
        assert token.balanceOf(p.engine.address) == 3 * 10**6 - 5 * 10**5


def test_the_keeper_sends_the_contracts_full_check_value(proto):
    assert proto.liquidator.NO_WITNESS() == NO_WITNESS
