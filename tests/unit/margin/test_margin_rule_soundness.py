"""The independent review's margin-rule findings, each on the test wiring (spot 3,000, vol 60%):
a coalition of accounts cannot move value out of an account below initial margin, nor make a
healthy one liquidatable, without a price, vol or time move."""

from __future__ import annotations

import boa
import pytest

from tests import protocol as P  # noqa: N812

WAD = 10**18
E1, E7 = P.expiry_in(1), P.expiry_in(7)


pytestmark = pytest.mark.usefixtures("isolate")


@pytest.fixture(scope="module")
def proto(proto):
    """The conftest protocol with 60% vol entries on E1 and E7 too."""
    proto.vol.update(E1, 6 * WAD // 10, 0)
    proto.vol.update(E7, 6 * WAD // 10, 0)
    return proto


def fill(p, maker, taker, sid, maker_buys, size, price, caller=None):
    order = maker.order(sid, maker_buys, size, price)
    with boa.env.prank(caller or taker):
        p.engine.fill(P.as_tuple(order), maker.sign(p, order), size, taker)


def test_straddle_between_grid_points_cannot_drain_the_fund(proto):
    """Finding 1: a long straddle struck two MM grid steps above spot (3,188.43, between two IM
    grid points) levered to its IM limit had H_MM -2,867.30 while H_IM was 0; selling the legs
    back cheap and liquidating made the fund pay. H_IM now covers MM's scenarios."""
    p = proto
    mm, grid = p.engine.risk_params()[1], p.engine.risk_params()[2]
    u = p.calculator.spot_shock(mm, grid, 6 * WAD // 10)
    strike = 3000 * WAD * (WAD + 2 * u // 3) // WAD // 10**16 * 10**16
    assert strike == 3188_43 * 10**16
    call = p.engine.list_series(E1, strike, True)
    put = p.engine.list_series(E1, strike, False)
    a, b = boa.env.generate_address("A"), P.Maker.new("B")
    p.fund(a, usd=100_000)
    p.fund(b.address, usd=1_000_000)
    for sid in (call, put):
        low, high = p.price_band(sid, a)
        fill(p, b, a, sid, False, 100 * WAD, (low + high) // 2)
    h_im = p.engine.health(a, True)[0]
    with boa.env.prank(a):
        p.engine.withdraw(p.usd.address, h_im // 10**12, a)
    _, h_im, h_mm = p.engine.margin(a)
    assert 0 <= h_im < 10**12
    assert h_mm >= h_im  # before the fix: H_MM -2,867.30 here
    # Selling the legs back to B at half the band's bottom: the engine lets a trade through
    # only while A stays at or above initial margin (or reduces its risk), so A never reaches
    # H_MM < 0 and nobody can make the fund pay for it.
    for sid in (call, put):
        low, _ = p.price_band(sid, a)
        order = b.order(sid, True, 100 * WAD, low // 2)
        try:
            with boa.env.prank(a):
                p.engine.fill(P.as_tuple(order), b.sign(p, order), 100 * WAD, a)
        except boa.BoaError as e:
            assert "engine: below initial margin" in repr(e) or "price outside band" in repr(e)
        _, h_im, h_mm = p.engine.margin(a)
        assert 0 <= h_im <= h_mm
    with boa.reverts("liquidator: healthy"):
        p.liquidator.start_auction(a, 2**256 - 1)


def test_underwater_account_cannot_overpay_a_colluder(proto):
    """Finding 2: short 10 puts at 2,800 at spot 2,700 (H_MM < 0), buying them back from a
    colluder at 408.47 each (worth about 155) handed 2,534.66 of equity away. Fills of an account
    left below initial margin are held to the fair-price band."""
    p = proto
    put = p.engine.list_series(E7, 2800 * WAD, False)
    victim = P.short_puts(p, put, "underwater")
    p.set_spot(2700)
    assert p.engine.margin(victim)[2] < 0
    colluder = P.Maker.new("colluder")
    p.fund(colluder.address, usd=100_000)
    low, high = p.price_band(put, victim)
    assert low < 155 * WAD < high < 408_47 * WAD // 100
    mtm_before = p.engine.margin(victim)[0]
    with pytest.raises(boa.BoaError) as refused:
        fill(p, colluder, victim, put, False, 10 * WAD, 408_47 * WAD // 100)
    assert "below initial margin" in repr(refused.value) or "outside band" in repr(refused.value)
    # Within the band the buy-back goes through: H_IM no lower, and the equity handed over is
    # at most the band's width above the model value.
    fill(p, colluder, victim, put, False, 10 * WAD, high)
    mtm_after = p.engine.margin(victim)[0]
    assert mtm_before - mtm_after <= 10 * (high - low)


def test_operator_cannot_sell_itself_its_accounts_value(proto):
    """Finding 3: an operator signed a maker order selling one put (worth about 30) for 8,000
    and filled it as taker for the account it operates: the account lost 7,968."""
    p = proto
    put = p.engine.list_series(E7, 2800 * WAD, False)
    owner, operator = boa.env.generate_address("owner"), P.Maker.new("operator")
    p.fund(owner, usd=20_000)
    p.fund(operator.address, usd=1_000)
    with boa.env.prank(owner):
        p.engine.set_operator(operator.address, True)
    _, high = p.price_band(put, owner)
    assert high < 8_000 * WAD
    with boa.reverts("engine: price outside band"):
        fill(p, operator, owner, put, False, WAD, 8_000 * WAD, caller=operator.address)
    fill(p, operator, owner, put, False, WAD, high, caller=operator.address)


def test_listing_an_expiry_the_account_does_not_hold_moves_nothing(proto):
    """Finding 6: listing a one-day expiry at 100% ATM vol moved a short-put account from H_MM
    +206.24 to -1,218.63. sigma_ref is the account's own: max(ref_vol, the ATM vols it holds)."""
    p = proto
    put = p.engine.list_series(E7, 2800 * WAD, False)
    victim = P.short_puts(p, put, "short")
    before = p.engine.margin(victim)
    near = P.expiry_in(1) + 3600 * 5
    p.vol.update(near, WAD, 0)
    p.engine.list_series(near, 3000 * WAD, True)
    assert p.engine.margin(victim) == before


def test_a_stale_vol_blocks_new_risk_on_the_accounts_that_hold_it(proto):
    """Finding 5: after 6 hours without a vol update a long-straddle account withdrew
    4,753.82 USD where a fresh vol allowed 4,102.75 (the stale markup marks longs up too), and
    was liquidatable at the next refresh. While an expiry it holds is stale an account may
    only reduce its risk: no withdrawal, no fill that lowers its H_IM."""
    p = proto
    call = p.engine.list_series(E7, 3000 * WAD, True)
    put = p.engine.list_series(E7, 3000 * WAD, False)
    a, b = boa.env.generate_address("straddle"), P.Maker.new("dealer")
    p.fund(a, usd=20_000)
    p.fund(b.address, usd=1_000_000)
    for sid in (call, put):
        low, high = p.price_band(sid, a)
        fill(p, b, a, sid, False, 10 * WAD, (low + high) // 2)
    heartbeat = p.vol.vol_heartbeat()
    boa.env.time_travel(seconds=heartbeat + 1)
    p.set_spot(3000)  # the price feeds stay fresh
    fresh_limit = None
    with boa.env.prank(a), boa.reverts("engine: stale vol"):
        p.engine.withdraw(p.usd.address, 10**6, a)
    # A fill that adds risk is refused; deposits are always welcome.
    order = b.order(call, False, WAD, p.price_band(call, a)[1])
    with boa.env.prank(a), boa.reverts("engine: below initial margin"):
        p.engine.fill(P.as_tuple(order), b.sign(p, order), WAD, a)
    p.fund(a, usd=1)
    # Once the vol is fresh again, the account withdraws to its (fresh) initial margin.
    p.vol.update(E7, 6 * WAD // 10, 0)
    fresh_limit = p.engine.health(a, True)[0] // 10**12
    with boa.env.prank(a):
        p.engine.withdraw(p.usd.address, fresh_limit, a)
    assert p.engine.margin(a)[2] >= 0
