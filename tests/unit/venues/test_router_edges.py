"""Router behaviours that mutation testing (tools/mutate.py) showed the other tests leave open.

Each test pins one behaviour exactly: the reentrancy lock, the length check in both directions,
the output measured as a balance difference for a recipient that already holds the token, and
allowance handling when an allowance is already large enough.
"""

from __future__ import annotations

import boa
import pytest

from keeper.routing import amount_out_exact
from tests.conftest import ROOT

WAD = 10**18
MAX_UINT = 2**256 - 1
FAR = 2**255


pytestmark = pytest.mark.usefixtures("isolate")


@pytest.fixture(scope="module")
def setup(pool_deployer, eth, usd, lp, trader):
    pool = pool_deployer.deploy(eth.address, usd.address, 30, "LP", "LP")
    other = pool_deployer.deploy(eth.address, usd.address, 5, "LP", "LP")
    for t in (eth, usd):
        t.mint(lp, 10**40)
        t.mint(trader, 10**40)
    for p in (pool, other):
        with boa.env.prank(lp):
            eth.approve(p.address, MAX_UINT)
            usd.approve(p.address, MAX_UINT)
            p.add_liquidity(100 * WAD, 300_000 * 10**6, 0, lp)
    router = boa.load(str(ROOT / "contracts/venues/Router.vy"))
    with boa.env.prank(trader):
        eth.approve(router.address, MAX_UINT)
        usd.approve(router.address, MAX_UINT)
    return router, pool, other


def _out(pool, amount, eth):
    """Exact output of selling `amount` ETH (token0) into a 30 bps pool."""
    r0, r1, _ = pool.get_reserves()
    return amount_out_exact(amount, r0, r1, 30)


def test_swap_split_is_nonreentrant(setup, eth, usd, trader):
    router, pool, _ = setup
    args = (eth.address, usd.address, [], [], 0, trader, FAR)
    with boa.reverts("router: no pools"):  # the inner call on its own
        router.swap_split(*args)
    # The input token calls back into swap_split during transferFrom: the lock refuses it with
    # empty revert data, which bubbles up (unlocked, "router: no pools" would bubble up instead).
    eth.set_hook(router.address, router.swap_split.prepare_calldata(*args))
    with boa.env.prank(trader), pytest.raises(boa.BoaError) as err:
        router.swap_split(eth.address, usd.address, [pool.address], [WAD], 0, trader, FAR)
    assert err.value.stack_trace.last_frame.vm_error.args == (b"",)


def test_length_mismatch_either_way(setup, eth, usd, trader):
    router, pool, other = setup
    with boa.env.prank(trader):
        with boa.reverts("router: length mismatch"):
            router.swap_split(eth.address, usd.address, [pool.address], [WAD, WAD], 0, trader, FAR)
        with boa.reverts("router: length mismatch"):
            router.swap_split(
                eth.address, usd.address, [pool.address, other.address], [WAD], 0, trader, FAR
            )
    with boa.reverts("router: length mismatch"):
        router.quote_split(eth.address, [pool.address], [WAD, WAD])


def test_output_counts_only_the_new_tokens(setup, eth, usd, trader):
    router, pool, _ = setup
    holder = boa.env.generate_address("holder")
    usd.mint(holder, 1_234 * 10**6)  # the recipient already holds less than the output
    expected = _out(pool, 2 * WAD, eth)
    with boa.env.prank(trader):
        out = router.swap_split(eth.address, usd.address, [pool.address], [2 * WAD], 0, holder, FAR)
    assert out == expected
    assert usd.balanceOf(holder) == 1_234 * 10**6 + expected


def test_sufficient_allowance_is_not_touched(setup, eth, usd, trader):
    router, pool, _ = setup
    with boa.env.prank(trader):
        router.swap_split(eth.address, usd.address, [pool.address], [WAD], 0, trader, FAR)
    assert eth.allowance(router.address, pool.address) == MAX_UINT  # approved once, infinite
    eth.set_failures(False, True)  # any further approve would now fail the swap
    expected = _out(pool, 3 * WAD, eth)
    with boa.env.prank(trader):
        out = router.swap_split(eth.address, usd.address, [pool.address], [3 * WAD], 0, trader, FAR)
    assert out == expected


def test_allowance_of_one_wei_is_reset_before_renewal(setup, eth, usd, trader):
    router, pool, _ = setup
    # Allowances capped at 5,000 USD and approve(non-zero) over non-zero refused: a first swap
    # leaves exactly 1 micro-USD of allowance, which must be zeroed before the renewal.
    usd.set_allowance_quirks(5_000 * 10**6, True)
    with boa.env.prank(trader):
        router.swap_split(
            usd.address, eth.address, [pool.address], [5_000 * 10**6 - 1], 0, trader, FAR
        )
    assert usd.allowance(router.address, pool.address) == 1
    r0, r1, _ = pool.get_reserves()
    expected = amount_out_exact(1_000 * 10**6, r1, r0, 30)
    with boa.env.prank(trader):
        out = router.swap_split(
            usd.address, eth.address, [pool.address], [1_000 * 10**6], 0, trader, FAR
        )
    assert out == expected
    assert usd.allowance(router.address, pool.address) == 4_000 * 10**6
