"""Property tests for the venues: k never decreases and value per share never falls under random
operation sequences; a one-block price manipulation moves a window-W TWAP by at most its time
share; the closed-form optimal split beats or ties any other split."""

from __future__ import annotations

from math import isqrt

import boa
import mpmath as mp
import numpy as np
import pytest
from boa.contracts.base_evm_contract import BoaError
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.routing import amount_out, amount_out_exact, optimal_split
from tests.conftest import deployer, scaled
from tests.strategies import token_amounts

WAD = 10**18
MAX_UINT = 2**256 - 1


@pytest.fixture(scope="module")
def env():
    """Tokens, deployers and two funded users, shared by every example (each example runs in
    its own anchor, so state never leaks between examples)."""
    token = deployer("tests/contracts/TestToken.vy")
    pool_deployer = deployer("contracts/venues/ConstantProductPool.vy")
    feed_deployer = deployer("contracts/oracle/PoolTwapFeed.vy")
    eth = token.deploy("Ether", "ETH", 18)
    usd = token.deploy("US Dollar", "USD", 6)
    lp = boa.env.generate_address("lp")
    trader = boa.env.generate_address("trader")
    for t in (eth, usd):
        for user in (lp, trader):
            t.mint(user, 10**45)
    return {
        "eth": eth,
        "usd": usd,
        "lp": lp,
        "trader": trader,
        "pool": pool_deployer,
        "feed": feed_deployer,
    }


def new_pool(env, fee_bps: int, eth_amount: int, usd_amount: int):
    eth, usd = env["eth"], env["usd"]
    pool = env["pool"].deploy(eth.address, usd.address, fee_bps, "LP", "LP")
    for user in (env["lp"], env["trader"]):
        with boa.env.prank(user):
            eth.approve(pool.address, MAX_UINT)
            usd.approve(pool.address, MAX_UINT)
    with boa.env.prank(env["lp"]):
        pool.add_liquidity(eth_amount, usd_amount, 0, env["lp"])
    return pool


# ---------------------------------------------------------------------------------------------
# k never decreases; value per share never falls; the pool holds its reserves
# ---------------------------------------------------------------------------------------------

amounts = token_amounts
operation = st.tuples(
    st.sampled_from(["sell_eth", "sell_usd", "add", "remove"]), amounts, st.integers(0, 3)
)


@settings(max_examples=scaled(30))
@given(fee=st.sampled_from([0, 1, 30, 1000]), ops=st.lists(operation, min_size=1, max_size=10))
def test_k_never_decreases(env, fee, ops):
    eth, usd, lp, trader = env["eth"], env["usd"], env["lp"], env["trader"]
    with boa.env.anchor():
        pool = new_pool(env, fee, 50 * WAD, 150_000 * 10**6)
        for kind, amount, blocks in ops:
            if blocks:
                boa.env.time_travel(blocks=blocks)
            r0, r1, _ = pool.get_reserves()
            supply = pool.totalSupply()
            try:
                if kind == "sell_eth":
                    with boa.env.prank(trader):
                        out = pool.swap(eth.address, amount, 0, trader)
                    assert out == amount_out_exact(amount, r0, r1, fee)
                elif kind == "sell_usd":
                    with boa.env.prank(trader):
                        out = pool.swap(usd.address, amount, 0, trader)
                    assert out == amount_out_exact(amount, r1, r0, fee)
                elif kind == "add":
                    with boa.env.prank(trader):
                        pool.add_liquidity(amount, amount, 0, trader)
                else:
                    shares = min(amount, pool.balanceOf(lp))
                    with boa.env.prank(lp):
                        pool.remove_liquidity(shares, 0, 0, lp)
            except BoaError:
                continue  # a revert (dust, overflow) changes nothing
            n0, n1, _ = pool.get_reserves()
            new_supply = pool.totalSupply()
            if kind.startswith("sell"):
                assert n0 * n1 >= r0 * r1
                assert new_supply == supply
            # sqrt(k) per share never falls: k' * S^2 >= k * S'^2, exact integers.
            assert n0 * n1 * supply * supply >= r0 * r1 * new_supply * new_supply
            assert eth.balanceOf(pool.address) >= n0
            assert usd.balanceOf(pool.address) >= n1
            assert isqrt(n0 * n1) >= new_supply


# ---------------------------------------------------------------------------------------------
# One-block manipulation of the TWAP
# ---------------------------------------------------------------------------------------------


def _restore_amount(x: int, y: int, g: mp.mpf, target: mp.mpf) -> int:
    """Input (of the token with reserve x) that brings the pool back to the ratio x/y = target:
    (x + b)(x + g b) = target * x * y, solved in mpmath."""
    with mp.workdps(60):
        xm, ym = mp.mpf(x), mp.mpf(y)
        qa, qb, qc = g, (1 + g) * xm, xm * xm - target * xm * ym
        b = (-qb + mp.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)
        return max(int(b), 0)


@settings(max_examples=scaled(25))
@given(
    fee=st.sampled_from([0, 5, 30, 100]),
    window=st.sampled_from([300, 1800, 3600]),
    block_time=st.sampled_from([2, 12]),
    size=st.floats(0.001, 5.0),
    sell_eth=st.booleans(),
    snapshot_in_block=st.booleans(),
    query_delay=st.floats(0.0, 2.0),
)
def test_one_block_manipulation_moves_twap_by_its_time_share(
    env, fee, window, block_time, size, sell_eth, snapshot_in_block, query_delay
):
    """Attacker moves the price from p0 to p_m in one block, an arbitrageur restores it to p_r in
    the next (dt = block_time later). Against the same history without the attack, the answer
    moves by at most (dt |p_m - p0| + t_after |p_r - p0|) / W (+1 wei of flooring): the
    manipulation counts with its time share dt/W, the imperfect restoration with its own."""
    eth, usd, trader = env["eth"], env["usd"], env["trader"]
    with boa.env.anchor():
        pool = new_pool(env, fee, 100 * WAD, 300_000 * 10**6)
        feed = env["feed"].deploy(pool.address, eth.address, window, "twap")
        period = feed.period()

        def advance(seconds: int) -> None:
            """Keeper: time passes in blocks, update() whenever due (same in both branches)."""
            while seconds > 0:
                step = min(seconds, block_time * max(1, period // block_time))
                boa.env.time_travel(seconds=step)
                feed.update()
                seconds -= step

        # History: two windows of modest two-way trading.
        for i in range(6):
            with boa.env.prank(trader):
                pool.swap(
                    usd.address if i % 2 else eth.address,
                    (4_000 * 10**6) if i % 2 else WAD,
                    0,
                    trader,
                )
            advance(window // 3)
        boa.env.time_travel(seconds=block_time)
        p0 = pool.spot_price0()
        r0, r1, _ = pool.get_reserves()
        delay = int(query_delay * window)

        with boa.env.anchor():
            with boa.env.prank(trader):
                if sell_eth:
                    pool.swap(eth.address, int(size * r0), 0, trader)
                else:
                    pool.swap(usd.address, int(size * r1), 0, trader)
            p_m = pool.spot_price0()
            if snapshot_in_block:
                feed.update()
            boa.env.time_travel(seconds=block_time)
            m0, m1, _ = pool.get_reserves()
            g = 1 - mp.mpf(fee) / 10_000
            with boa.env.prank(trader):
                if sell_eth:  # price fell: sell USD back in
                    b = _restore_amount(m1, m0, g, mp.mpf(r1) / r0)
                    if b:
                        pool.swap(usd.address, b, 0, trader)
                else:
                    b = _restore_amount(m0, m1, g, mp.mpf(r0) / r1)
                    if b:
                        pool.swap(eth.address, b, 0, trader)
            p_r = pool.spot_price0()
            advance(delay)
            attacked = feed.latestRoundData()

        with boa.env.anchor():
            if snapshot_in_block:
                feed.update()
            boa.env.time_travel(seconds=block_time)
            advance(delay)
            baseline = feed.latestRoundData()

        assert attacked[2:] == baseline[2:]  # same observation, same round timing
        started = attacked[2]
        now = boa.env.timestamp + block_time + delay
        assert now - started >= window
        bound = (block_time * abs(p_m - p0) + delay * abs(p_r - p0)) // window + 1
        assert abs(attacked[1] - baseline[1]) <= bound
        # The manipulation is visible at all when it lies inside the averaged span.
        assert p_m != p0


# ---------------------------------------------------------------------------------------------
# The optimal split beats or ties any other split
# ---------------------------------------------------------------------------------------------

pool_params = st.tuples(
    st.floats(1.0, 1e6),  # reserve in
    st.floats(0.5, 2.0),  # price relative to 3000
    st.sampled_from([0.0, 0.0001, 0.0005, 0.003, 0.01, 0.1]),
)


@settings(max_examples=scaled(300))
@given(
    pools=st.lists(pool_params, min_size=1, max_size=8),
    amount_frac=st.floats(1e-6, 10.0),
    # No subnormal weights: amount * w would lose most of its bits and "spend" more than amount.
    weights=st.lists(st.floats(0.0, 1.0, allow_subnormal=False), min_size=8, max_size=8),
)
def test_optimal_split_beats_any_split(pools, amount_frac, weights):
    x = np.array([p[0] for p in pools])
    y = x * 3000 * np.array([p[1] for p in pools])
    fees = np.array([p[2] for p in pools])
    amount = float(x.sum() * amount_frac)
    best = optimal_split(amount, x, y, fees)
    assert np.all(best >= 0)
    assert best.sum() == pytest.approx(amount, rel=1e-15)
    w = np.array(weights[: len(pools)])
    other = amount * (w / w.sum()) if w.sum() > 0 else np.full(len(pools), amount / len(pools))
    out_best = amount_out(best, x, y, fees).sum()
    # Both totals are float sums of positive terms: relative error below ~1e-15 each.
    assert out_best >= amount_out(other, x, y, fees).sum() * (1 - 1e-13)
    # So does every single pool and the even split.
    for i in range(len(pools)):
        alone = np.zeros(len(pools))
        alone[i] = amount
        assert out_best >= amount_out(alone, x, y, fees).sum() * (1 - 1e-13)
