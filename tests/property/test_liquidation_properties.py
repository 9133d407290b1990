"""Liquidator properties over random portfolios and crashes (titanoboa; issue #5).

For a random account (short and long options in two expiries, cash, WETH), a random spot move
and random bid fractions:
- a healthy account can never be auctioned (full check and every witness index);
- every bid leaves the liquidated account's H_MM no lower than before;
- an unhealthy account can always be resolved: capped bids bring it to health (then the auction
  ends) or a whole-account bid empties it;
- value is conserved across a bid: the MtM of every account involved (victim, bidder, insurance
  fund, the other cash holders) sums to the same total, and the victim loses exactly the
  discount it pays;
- socialized loss equals recorded bad debt.
"""

from __future__ import annotations

import boa
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.liquidation import NO_WITNESS
from tests import protocol as P  # noqa: N812
from tests.conftest import events, scaled

WAD = 10**18
E1, E2 = P.expiry_in(8), P.expiry_in(36)
N_SCENARIOS = 3 * (2 * P.GRID[0] + 1)
# MtM is linear in sizes and cash, so a bid conserves it up to the rounding of each moved size
# and cash share (a few wei of USD per position): 1e-9 USD is far above that and far below any
# real leak.
TOLERANCE = 10**9

_WORLD: dict[str, object] = {}


def _world():
    """One deployment in its own Env, shared by the examples (each runs in an anchor)."""
    if not _WORLD:
        env = boa.Env()
        with boa.swap_env(env):
            p = P.deploy()
            p.vol.update(E1, 6 * WAD // 10, -WAD // 10)
            p.vol.update(E2, 7 * WAD // 10, 0)
            series = [
                p.engine.list_series(E1, 3200 * WAD, True),
                p.engine.list_series(E1, 2800 * WAD, False),
                p.engine.list_series(E2, 3000 * WAD, True),
                p.engine.list_series(E2, 2600 * WAD, False),
            ]
            dealer = P.Maker.new("dealer")
            p.fund(dealer.address, usd=5_000_000, weth=50)
            bidder = boa.env.generate_address("bidder")
            p.fund(bidder, usd=2_000_000)
            saver = boa.env.generate_address("saver")
            p.fund(saver, usd=100_000)
        _WORLD.update(env=env, p=p, series=series, dealer=dealer, bidder=bidder, saver=saver)
    return _WORLD


portfolios = st.lists(
    st.tuples(st.integers(0, 3), st.booleans(), st.integers(1, 8)), min_size=1, max_size=3
)


def _build(w, legs, cash: int, weth: int) -> str:
    """A victim account: `legs` = (series index, victim sells?, size in units)."""
    p, dealer = w["p"], w["dealer"]
    victim = boa.env.generate_address("victim")
    p.fund(victim, usd=cash, weth=weth / 10)
    for nonce, (i, sells, size) in enumerate(legs):
        order = dealer.order(w["series"][i], sells, size * WAD, 100 * WAD, nonce=nonce)
        try:
            with boa.env.prank(victim):
                p.engine.fill(P.as_tuple(order), dealer.sign(p.engine, order), size * WAD, victim)
        except boa.BoaError:
            pass  # the margin rule refused this leg: keep what was accepted
    return victim


def _mtm_total(p, accounts: list[str]) -> int:
    return sum(p.engine.margin(a)[0] for a in accounts)


@settings(max_examples=scaled(12), deadline=None)
@given(
    legs=portfolios,
    cash=st.integers(1_000, 20_000),
    weth=st.integers(0, 20),
    spot=st.sampled_from([3600, 3300, 2900, 2600, 2300, 2000, 1700]),
    fraction=st.integers(WAD // 100, WAD),
    fund=st.sampled_from([0, 500, 50_000]),
)
def test_liquidation_properties(legs, cash, weth, spot, fraction, fund):
    w = _world()
    p, bidder, saver = w["p"], w["bidder"], w["saver"]
    with boa.swap_env(w["env"]), boa.env.anchor():
        if fund:
            p.fund(p.admin, usd=fund)
            # The admin gives its engine cash to the fund through the token path.
            with boa.env.prank(p.admin):
                p.engine.withdraw(p.usd.address, fund * 10**6, p.admin)
                p.usd.approve(p.liquidator.address, fund * 10**6)
                p.liquidator.deposit_insurance(fund * 10**6)
        victim = _build(w, legs, cash, weth)
        p.set_spot(spot)
        mtm, _, h_mm = p.engine.margin(victim)

        if h_mm >= 0:
            # A healthy account can never be auctioned, by any proof.
            for witness in [NO_WITNESS, *range(N_SCENARIOS)]:
                try:
                    p.liquidator.start_auction(victim, witness)
                except boa.BoaError:
                    continue
                raise AssertionError(f"healthy account auctioned with witness {witness}")
            return

        p.liquidator.start_auction(victim, NO_WITNESS)
        involved = [victim, bidder, saver, p.liquidator.address, w["dealer"].address]
        for _ in range(6):
            total = _mtm_total(p, involved)
            price_before = p.engine.cash_share_price()
            shares = p.engine.total_cash_shares()
            bad_before = p.liquidator.bad_debt()
            with boa.env.prank(bidder):
                taken, outlay = p.liquidator.bid(victim, fraction if mtm > 0 else WAD, 2**255 - 1)
            (fee,) = [f["fund_fee"] for name, f in events(p.liquidator) if name == "Bid"]
            new_mtm, _, new_h = p.engine.margin(victim)
            # A bid never lowers the account's H_MM.
            assert new_h >= h_mm
            # Socialized loss == recorded bad debt: the cash pool lost what bad_debt gained.
            socialized = p.liquidator.bad_debt() - bad_before
            pool_loss = shares * (price_before - p.engine.cash_share_price()) // WAD
            assert abs(pool_loss - socialized) <= shares // WAD + 1
            # Value is conserved: whatever moved between the accounts involved sums to zero ...
            assert abs(_mtm_total(p, involved) - total) <= TOLERANCE
            if mtm > 0:
                # ... and the victim lost exactly the discount: taken * MtM - price.
                discount = mtm * taken // WAD - (outlay - fee)
                assert 0 <= discount <= mtm * taken // WAD * P.LIQUIDATION[1] // WAD + 1
                assert abs((mtm - new_mtm) - discount) <= TOLERANCE
            if p.liquidator.auction_start(victim) == 0:
                # A whole-account bid: nothing is left.
                assert p.engine.packed_positions(victim) == []
                assert p.engine.cash(victim) == 0 and p.engine.underlying_balance(victim) == 0
                return
            if new_h >= 0:
                p.liquidator.end_auction(victim)
                return
            mtm, h_mm = new_mtm, new_h
            fraction = WAD  # the next bids take up to the cap
        raise AssertionError("an unhealthy account was not resolved within six bids")
