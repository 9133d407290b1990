"""Router.swap_split / quote_split: exact totals, atomicity, every revert, allowance handling."""

from __future__ import annotations

import boa
import pytest

from keeper.routing import amount_out_exact, optimal_split, to_integer_amounts
from tests.conftest import ROOT

WAD = 10**18
ZERO = "0x0000000000000000000000000000000000000000"
MAX_UINT = 2**256 - 1
FEES = (5, 30, 100)
DEPTHS = (100, 200, 300)  # ETH per pool, at 3000 USD/ETH
FAR = 2**255  # a deadline that never expires


@pytest.fixture(scope="module")
def dai(token_deployer):
    return token_deployer.deploy("Dai", "DAI", 18)


def _funded_pool(pool_deployer, t0, t1, fee, a0, a1, lp):
    pool = pool_deployer.deploy(t0.address, t1.address, fee, "LP", "LP")
    with boa.env.prank(lp):
        t0.approve(pool.address, MAX_UINT)
        t1.approve(pool.address, MAX_UINT)
        pool.add_liquidity(a0, a1, 0, lp)
    return pool


@pytest.fixture(scope="module")
def pools(pool_deployer, eth, usd, lp):
    for t in (eth, usd):
        t.mint(lp, 10**40)
    return [
        _funded_pool(pool_deployer, eth, usd, fee, d * WAD, d * 3000 * 10**6, lp)
        for fee, d in zip(FEES, DEPTHS, strict=True)
    ]


@pytest.fixture(scope="module")
def router():
    return boa.load(str(ROOT / "contracts/venues/Router.vy"))


@pytest.fixture(scope="module")
def funded(router, eth, usd, trader):
    for t in (eth, usd):
        t.mint(trader, 10**40)
        with boa.env.prank(trader):
            t.approve(router.address, MAX_UINT)
    return trader


def reserves(pool, token_in, eth):
    r0, r1, _ = pool.get_reserves()
    return (r0, r1) if token_in == eth.address else (r1, r0)


@pytest.mark.parametrize("sell_eth", [True, False])
def test_swap_split_exact(router, pools, eth, usd, funded, sell_eth):
    token_in, token_out = (eth, usd) if sell_eth else (usd, eth)
    legs = [3 * WAD, 5 * WAD + 7, 11 * WAD] if sell_eth else [9_000 * 10**6, 15_000 * 10**6, 1]
    expected = [
        amount_out_exact(a, *reserves(p, token_in.address, eth), fee)
        for a, p, fee in zip(legs, pools, FEES, strict=True)
    ]
    addrs = [p.address for p in pools]
    assert router.quote_split(token_in.address, addrs, legs) == sum(expected)
    in_before, out_before = token_in.balanceOf(funded), token_out.balanceOf(funded)
    with boa.env.prank(funded):
        out = router.swap_split(
            token_in.address, token_out.address, addrs, legs, sum(expected), funded, FAR
        )
    logs = router.get_logs()
    assert out == sum(expected)
    assert in_before - token_in.balanceOf(funded) == sum(legs)
    assert token_out.balanceOf(funded) - out_before == out
    assert token_in.balanceOf(router.address) == 0
    assert token_out.balanceOf(router.address) == 0
    split = next(e for e in logs if type(e).__name__ == "SplitSwap")
    assert (split.amount_in, split.amount_out, split.legs) == (sum(legs), out, 3)


def test_zero_legs_skipped_and_other_recipient(router, pools, eth, usd, funded, lp):
    addrs = [p.address for p in pools]
    before = [p.get_reserves()[:2] for p in pools]
    got = eth.balanceOf(lp)
    with boa.env.prank(funded):
        out = router.swap_split(usd.address, eth.address, addrs, [0, 6000 * 10**6, 0], 0, lp, FAR)
    assert eth.balanceOf(lp) - got == out > 0
    after = [p.get_reserves()[:2] for p in pools]
    assert after[0] == before[0] and after[2] == before[2] and after[1] != before[1]
    assert router.get_logs()[-1].legs == 1


def test_keeper_split_executes(router, pools, eth, usd, funded):
    """The keeper's optimal split, rounded to integers, executes for the quoted total and beats
    every single pool and an even split."""
    amount = 40_000 * 10**6
    x = [p.get_reserves()[1] for p in pools]
    y = [p.get_reserves()[0] for p in pools]
    legs = to_integer_amounts(optimal_split(amount, x, y, [f / 10_000 for f in FEES]), amount)
    addrs = [p.address for p in pools]
    quoted = router.quote_split(usd.address, addrs, legs)
    singles = [p.get_amount_out(usd.address, amount) for p in pools]
    even = router.quote_split(
        usd.address, addrs, [amount // 3, amount // 3, amount - 2 * (amount // 3)]
    )
    assert quoted > max(singles) and quoted > even
    with boa.env.prank(funded):
        assert (
            router.swap_split(usd.address, eth.address, addrs, legs, quoted, funded, FAR) == quoted
        )


def test_deadline(router, pools, eth, usd, funded):
    addrs = [pools[0].address]
    now = boa.env.timestamp
    with boa.env.prank(funded):
        with boa.reverts("router: expired"):
            router.swap_split(usd.address, eth.address, addrs, [10**6], 0, funded, now - 1)
        assert router.swap_split(usd.address, eth.address, addrs, [10**6], 0, funded, now) > 0


def test_min_total_out(router, pools, eth, usd, funded):
    addrs = [p.address for p in pools]
    legs = [1000 * 10**6, 2000 * 10**6, 3000 * 10**6]
    quoted = router.quote_split(usd.address, addrs, legs)
    with boa.env.prank(funded):
        with boa.reverts("router: insufficient output"):
            router.swap_split(usd.address, eth.address, addrs, legs, quoted + 1, funded, FAR)
        assert (
            router.swap_split(usd.address, eth.address, addrs, legs, quoted, funded, FAR) == quoted
        )


def test_argument_reverts(router, pools, pool_deployer, eth, usd, dai, funded, lp):
    addrs = [p.address for p in pools]
    dai.mint(lp, 10**30)
    other = _funded_pool(pool_deployer, eth, dai, 30, WAD * 10, WAD * 30_000, lp)
    with boa.env.prank(funded):
        with boa.reverts("router: length mismatch"):
            router.swap_split(usd.address, eth.address, addrs, [1, 2], 0, funded, FAR)
        with boa.reverts("router: no pools"):
            router.swap_split(usd.address, eth.address, [], [], 0, funded, FAR)
        with boa.reverts("router: identical tokens"):
            router.swap_split(usd.address, usd.address, addrs[:1], [1], 0, funded, FAR)
        with boa.reverts("router: zero recipient"):
            router.swap_split(usd.address, eth.address, addrs[:1], [1], 0, ZERO, FAR)
        with boa.reverts("router: pool pair mismatch"):
            router.swap_split(
                usd.address, eth.address, [addrs[0], other.address], [1, 1], 0, funded, FAR
            )
        with boa.reverts("router: pool pair mismatch"):
            router.swap_split(usd.address, dai.address, addrs[:1], [1], 0, funded, FAR)
        with boa.reverts("router: duplicate pool"):
            router.swap_split(
                usd.address, eth.address, [addrs[0], addrs[1], addrs[0]], [1, 1, 1], 0, funded, FAR
            )
        with boa.reverts("router: zero input"):
            router.swap_split(usd.address, eth.address, addrs, [0, 0, 0], 0, funded, FAR)


def test_quote_split_reverts(router, pools, pool_deployer, eth, usd, dai, lp):
    addrs = [p.address for p in pools]
    dai.mint(lp, 10**30)
    other = _funded_pool(pool_deployer, eth, dai, 30, WAD * 10, WAD * 30_000, lp)
    with boa.reverts("router: length mismatch"):
        router.quote_split(usd.address, addrs, [1])
    with boa.reverts("router: no pools"):
        router.quote_split(usd.address, [], [])
    with boa.reverts("router: pool pair mismatch"):
        router.quote_split(eth.address, [addrs[0], other.address], [1, 1])
    with boa.reverts("router: pool pair mismatch"):
        router.quote_split(dai.address, addrs[:1], [1])  # token_in not in pools[0]
    with boa.reverts("router: duplicate pool"):
        router.quote_split(usd.address, [addrs[1], addrs[1]], [1, 1])
    # Direction from either side of pools[0].
    assert router.quote_split(eth.address, addrs[:1], [WAD]) == pools[0].get_amount_out(
        eth.address, WAD
    )
    assert router.quote_split(usd.address, addrs[:1], [10**6]) == pools[0].get_amount_out(
        usd.address, 10**6
    )


def test_atomic_when_a_leg_fails(router, pools, pool_deployer, eth, usd, funded, lp):
    """A failing last leg undoes the legs before it: every balance and reserve is unchanged."""
    empty = pool_deployer.deploy(eth.address, usd.address, 30, "E", "E")
    addrs = [pools[0].address, pools[1].address, empty.address]
    snapshot = (
        [p.get_reserves() for p in pools],
        usd.balanceOf(funded),
        eth.balanceOf(funded),
        usd.allowance(router.address, pools[0].address),
    )
    with boa.env.prank(funded), boa.reverts("pool: no liquidity"):
        router.swap_split(usd.address, eth.address, addrs, [10**9, 10**9, 10**9], 0, funded, FAR)
    # A dust leg whose output rounds to zero also fails the whole order.
    with boa.env.prank(funded), boa.reverts("pool: zero output"):
        router.swap_split(eth.address, usd.address, addrs[:2], [WAD, 10**8], 0, funded, FAR)
    assert snapshot == (
        [p.get_reserves() for p in pools],
        usd.balanceOf(funded),
        eth.balanceOf(funded),
        usd.allowance(router.address, pools[0].address),
    )


def test_token_failures(router, pools, eth, usd, funded):
    addrs = [p.address for p in pools]
    usd.set_failures(True, False)
    with boa.env.prank(funded), boa.reverts("router: transfer in failed"):
        router.swap_split(usd.address, eth.address, addrs, [10**6] * 3, 0, funded, FAR)
    usd.set_failures(False, True)
    with boa.env.prank(funded), boa.reverts("router: approve failed"):
        router.swap_split(usd.address, eth.address, addrs, [10**6] * 3, 0, funded, FAR)


def test_allowance_runs_short_and_is_renewed(router, pools, eth, usd, funded):
    """With a capped, USDT-style token the router's allowance runs down; the router resets it to
    zero and approves again."""
    usd.set_allowance_quirks(5_000 * 10**6, True)
    addr = [pools[1].address]
    with boa.env.prank(funded):
        usd.approve(router.address, 0)
        usd.approve(router.address, MAX_UINT)
        router.swap_split(usd.address, eth.address, addr, [4_000 * 10**6], 0, funded, FAR)
        assert usd.allowance(router.address, pools[1].address) == 1_000 * 10**6
        usd.approve(router.address, 0)
        usd.approve(router.address, MAX_UINT)
        out = router.swap_split(usd.address, eth.address, addr, [3_000 * 10**6], 0, funded, FAR)
    assert out > 0
    assert usd.allowance(router.address, pools[1].address) == 2_000 * 10**6


def test_lying_pool_cannot_fake_output(router, pools, eth, usd, funded):
    liar = boa.load(str(ROOT / "tests/contracts/LyingPool.vy"), eth.address, usd.address)
    addrs = [pools[0].address, liar.address]
    real = pools[0].get_amount_out(usd.address, 10**9)
    with boa.env.prank(funded):
        with boa.reverts("router: insufficient output"):
            router.swap_split(
                usd.address, eth.address, addrs, [10**9, 10**9], real + 1, funded, FAR
            )
        assert (
            router.swap_split(usd.address, eth.address, addrs, [10**9, 10**9], 0, funded, FAR)
            == real
        )


def test_max_pools(router, pool_deployer, eth, usd, funded, lp):
    many = [_funded_pool(pool_deployer, eth, usd, 30, WAD, 3000 * 10**6, lp) for _ in range(8)]
    addrs = [p.address for p in many]
    assert router.MAX_POOLS() == 8
    with boa.env.prank(funded):
        out = router.swap_split(usd.address, eth.address, addrs, [10**6] * 8, 0, funded, FAR)
    assert out == 8 * amount_out_exact(10**6, 3000 * 10**6, WAD, 30)
