"""Gas of the margin engine's actions on realistic 16-position accounts (issue #4 goals).

`measure()` deploys the protocol on a fresh titanoboa env (tests/protocol.py), lists 16 series
over four expiries, and builds two 16-position accounts by fills; then it measures, each priced
as the first call of a new transaction (bench.common.execution_gas):
- health_full_16x21: MarginEngine.health(account, is_im=False), the full grid (n = 3: 7 spot
  points x 3 vol states = 21 scenarios) over 16 positions, with its oracle and vol reads;
- health_witness_16: MarginEngine.scenario_health at the witness scenario (one scenario);
- fill_16: a fill between the two 16-position accounts in a series both hold, both sides checked;
  both are well funded, so the health floor (no vols, no grid) proves their IM;
- fill_16_full: the same fill between two thinly funded 16-position accounts, whose floors
  fail, so each side runs the floor and then the full IM grid (the worst passing fill);
- deposit and withdraw of cash by an account with 16 positions (withdraw runs the IM check,
  passed by the floor); withdraw_full: a thinly funded account's withdrawal (the full grid);
- engine_swap_3: MarginEngine.swap of cash into WETH split over three pools by the Router, for
  the 16-position account (the margin rule included);
- accrue: MarginEngine.accrue, the first cash touch of a block (the pool has supply and borrows,
  so the full accrual runs and logs the indices);
- with a perp added to both 16-position accounts (each has traded it before, and funding has
  accrued since): health_full_16x21_perp, the full MM grid of 16 options and a perp;
  perp_fill_16, a perp fill between the two (PerpBook's trade, both sides' cash, the margin
  rule passed by the health floor); settle_perp, one account's funding and price PnL into cash.
Cash bears interest at tests/deployment.py's INTEREST, a borrower holds debt, and every measured
call is the first of a new block (12 s later), so each pays the accrual a real first touch does.
"""

from __future__ import annotations

import boa

from bench.common import execution_gas

WAD = 10**18
BLOCK = 12


def new_block() -> None:
    """Move to the next block, so the next measured call is its first cash touch."""
    boa.env.time_travel(seconds=BLOCK)


def touch_pools(p, pools) -> None:
    """Another trader's small swap through each pool earlier in the block: the pools' own
    first-in-block price accumulators are then written, so engine_swap_3 measures the engine's
    swap (with its first cash touch of the block) and not the pools' per-block oracle update,
    as in the figure before cash bore interest."""
    other = boa.env.generate_address("pool-toucher")
    p.usd.mint(other, 10**9)
    for pool in pools:
        with boa.env.prank(other):
            p.usd.approve(pool.address, 10**6)
            pool.swap(p.usd.address, 10**6, 0, other)


def add_borrower(p) -> None:
    """An account holding cash debt, so the pool has borrows and the accrual does its work."""
    borrower = boa.env.generate_address("borrower")
    p.fund(borrower, weth=100)
    with boa.env.prank(borrower):
        p.engine.withdraw(p.usd.address, 50_000 * 10**6, borrower)


def list_chain(p) -> list[int]:
    """List the benchmarks' 16 series (4 expiries x 4 strikes, calls and puts alternating) on
    a fresh deployment, with a skewed vol entry per expiry; returns their ids."""
    from tests import protocol as P  # noqa: N812

    expiries = [P.expiry_in(d) for d in (8, 15, 36, 92)]
    for e in expiries:
        p.vol.update(e, 6 * WAD // 10, -WAD // 10)
    strikes = (2600, 2900, 3200, 3500)
    return [
        p.engine.list_series(e, k * WAD, i % 2 == 0)
        for e in expiries
        for i, k in enumerate(strikes)
    ]


# Cash (USD) of the thinly funded accounts: above their initial margin (about 1,300 USD for
# this book) but far below the health floor's all-short-at-the-shock-bound requirement.
TIGHT_USD = 20_000


def _build_book(p, dealer, ids: list[int], account: str, usd: float, nonce: int) -> None:
    """Give `account` the benchmarks' 16 positions (2 options each, a third of them long) by
    filling the dealer's orders; fund it with `usd` first when it is not already funded."""
    from tests import protocol as P  # noqa: N812

    if usd:
        p.fund(account, usd=usd)
    for i, sid in enumerate(ids):
        order = dealer.order(sid, i % 3 != 0, 2 * WAD, 50 * WAD, nonce=nonce + i)
        with boa.env.prank(account):
            p.engine.fill(P.as_tuple(order), dealer.sign(p, order), WAD, account)


def _tight_figures(p, order: dict, signature: bytes, taker: str) -> dict[str, int]:
    """fill_16_full and withdraw_full: accounts whose health floor is negative, so their
    initial-margin checks run the full grid."""
    from tests import protocol as P  # noqa: N812

    assert p.health_floor(order["maker"]) < 0 and p.health_floor(taker) < 0, "floors must fail"
    with boa.env.prank(taker):
        new_block()
        fill = execution_gas(p.engine, "fill", P.as_tuple(order), signature, WAD // 2, taker)
        new_block()
        return {
            "fill_16_full": fill,
            "withdraw_full": execution_gas(p.engine, "withdraw", p.usd.address, 10**6, taker),
        }


def measure() -> dict[str, int]:
    from tests import protocol as P  # noqa: N812
    from tests.deployment import INTEREST

    with boa.swap_env(boa.Env()):
        p = P.deploy()
        p.engine.set_interest_params(*INTEREST)
        ids = list_chain(p)
        dealer = P.Maker.new("dealer")
        trader = boa.env.generate_address("trader")
        p.fund(dealer.address, usd=10_000_000, weth=100)
        p.fund(trader, usd=1_000_000, weth=20)
        _build_book(p, dealer, ids, trader, 0, 0)
        tight_maker = P.Maker.new("tight-maker")
        tight_taker = boa.env.generate_address("tight-taker")
        for account, nonce in ((tight_maker.address, 100), (tight_taker, 200)):
            _build_book(p, dealer, ids, account, TIGHT_USD, nonce)
        tight_order = tight_maker.order(ids[5], False, WAD // 2, 50 * WAD, nonce=1)
        tight_signature = tight_maker.sign(p, tight_order)
        witness = p.engine.health(trader, False)[1]
        order = dealer.order(ids[5], True, WAD, 50 * WAD, nonce=1)
        signature = dealer.sign(p, order)
        _, pools = P.deploy_venues(p)
        pool_addresses = [x.address for x in pools]
        legs = [3_000 * 10**6, 1_500 * 10**6, 500 * 10**6]
        p.usd.mint(trader, 10**9)
        with boa.env.prank(trader):
            p.usd.approve(p.engine.address, 10**9)
        assert p.health_floor(trader) >= 0 and p.health_floor(dealer.address) >= 0
        add_borrower(p)
        figures: dict[str, int] = {}
        with boa.env.prank(trader):
            new_block()
            figures["health_full_16x21"] = execution_gas(p.engine, "health", trader, False)
            figures["health_witness_16"] = execution_gas(
                p.engine, "scenario_health", trader, witness, False
            )
            figures["fill_16"] = execution_gas(
                p.engine, "fill", P.as_tuple(order), signature, WAD, trader
            )
            new_block()
            figures["deposit"] = execution_gas(p.engine, "deposit", p.usd.address, 10**9)
            new_block()
            figures["withdraw"] = execution_gas(p.engine, "withdraw", p.usd.address, 10**6, trader)
            figures |= _tight_figures(p, tight_order, tight_signature, tight_taker)
            new_block()
            touch_pools(p, pools)
            figures["engine_swap_3"] = execution_gas(
                p.engine, "swap", trader, p.usd.address, pool_addresses, legs, 0,
                boa.env.timestamp + 60,
            )  # fmt: skip
            new_block()
            figures["accrue"] = execution_gas(p.engine, "accrue")
        figures |= _perp_figures(p, dealer, trader)
        return figures


def _perp_figures(p, dealer, trader: str) -> dict[str, int]:
    """The perp on the 16-position accounts in a live market's steady state: the first fill
    sets the mark's premium, the second, an hour later, accrues funding from it and settles
    both positions at a nonzero funding index (so no measured write turns a zero word
    nonzero); another hour of funding accrues; then each figure is the first call of a block."""
    from keeper.series import PERP_ID
    from tests import protocol as P  # noqa: N812

    spot = 3000 * WAD
    for nonce in (300, 301):
        new_block()
        order = dealer.order(PERP_ID, False, 3 * WAD, spot + 15 * WAD, nonce=nonce)
        with boa.env.prank(trader):
            p.engine.fill(P.as_tuple(order), dealer.sign(p, order), 3 * WAD, trader)
        boa.env.time_travel(seconds=3600)
        p.set_spot(3000)
    order = dealer.order(PERP_ID, False, WAD, spot + 10 * WAD, nonce=302)
    signature = dealer.sign(p, order)
    assert p.perp_book.margin_terms(trader, spot)[2] != 0, "funding must have accrued"
    figures: dict[str, int] = {}
    with boa.env.prank(trader):
        new_block()
        figures["health_full_16x21_perp"] = execution_gas(p.engine, "health", trader, False)
        new_block()
        figures["perp_fill_16"] = execution_gas(
            p.engine, "fill", P.as_tuple(order), signature, WAD, trader
        )
        new_block()
        figures["settle_perp"] = execution_gas(p.engine, "settle_perp", dealer.address)
    return figures


if __name__ == "__main__":
    for key, gas in measure().items():
        print(f"{key:20s} {gas:>12,}")
