"""The utilization cap keeps deposits withdrawable: whatever borrowers try, a depositor can
withdraw down to the stated buffer.

Depositors put in random amounts; then, after some time (interest accrues), borrowers with
ample WETH collateral try to take everything: withdrawals into debt and hedge swaps of cash
they do not have, of random sizes up to the engine's whole cash balance, in random order.
Each borrowing action either goes through or reverts ("engine: utilization cap", or the
margin rule for a size its collateral cannot back); hedge swaps that borrow are held to the
same cap (tests/unit/margin/test_cash_interest.py, and the fuzz suite's
`utilization_within_cap`). The properties:

- no borrowing action leaves utilization above the cap;
- the engine keeps at least the buffer, (1 - cap) of the supply, in cash;
- every depositor can then withdraw (1 - cap) of its balance, and its whole balance when that
  is within the buffer (here: the smallest depositor).
"""

from __future__ import annotations

import boa
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.interest import WAD
from tests import protocol as P  # noqa: N812
from tests.conftest import scaled

USD = 10**6
CAPS = (5 * WAD // 10, 8 * WAD // 10, 9 * WAD // 10, WAD)
_WORLD: dict[str, object] = {}


def _world() -> tuple[boa.Env, P.Protocol, list[str], list[str]]:
    if not _WORLD:
        env = boa.Env()
        with boa.swap_env(env):
            p = P.deploy()
            depositors = [boa.env.generate_address(f"saver{i}") for i in range(3)]
            borrowers = [boa.env.generate_address(f"borrower{i}") for i in range(3)]
            for b in borrowers:
                p.fund(b, weth=2_000)
        _WORLD.update(env=env, p=p, depositors=depositors, borrowers=borrowers)
    return _WORLD["env"], _WORLD["p"], _WORLD["depositors"], _WORLD["borrowers"]  # type: ignore[return-value]


@settings(max_examples=scaled(25), deadline=None)
@given(
    cap=st.sampled_from(CAPS),
    deposits=st.lists(st.integers(1_000, 2_000_000), min_size=3, max_size=3),
    wait=st.sampled_from([0, 3600, 30 * 86_400]),
    attempts=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 100)), min_size=1, max_size=8),
)
def test_depositors_can_withdraw_down_to_the_buffer(cap, deposits, wait, attempts):
    env, p, depositors, borrowers = _world()
    with boa.swap_env(env), env.anchor():
        p.engine.set_interest_params(
            0, 4 * WAD // 100, 75 * WAD // 100, 8 * WAD // 10, WAD // 10, cap
        )
        for who, usd in zip(depositors, deposits, strict=True):
            p.fund(who, usd=usd)
        if wait:
            boa.env.time_travel(seconds=wait)
            p.set_spot(3000.0)
        for k, percent in attempts:
            who = borrowers[k]
            # Up to everything the engine holds (with nothing left, there is nothing to take).
            units = p.usd.balanceOf(p.engine.address) * percent // 100
            if units == 0:
                continue
            try:
                with boa.env.prank(who):
                    p.engine.withdraw(p.usd.address, units, who)
            except boa.BoaError as e:
                reasons = ("engine: utilization cap", "engine: below initial margin")
                assert any(r in str(e) for r in reasons), str(e)[:300]
            pool = p.engine.cash_pool()
            assert pool[4] <= cap, (pool[4], cap)
        supply = p.engine.cash_pool()[2]
        held = p.usd.balanceOf(p.engine.address) * 10**12
        assert held >= supply - supply * cap // WAD - 10**12, (held, supply, cap)
        # Every depositor can take (1 - cap) of its balance; the smallest all of it when it
        # fits in the buffer. Each withdrawal runs in its own snapshot.
        buffer = supply - supply * cap // WAD
        for who in depositors:
            balance = p.engine.cash(who)
            share = (balance - balance * cap // WAD) // 10**12
            whole = balance <= buffer - 10**12 and who == min(depositors, key=p.engine.cash)
            units = balance // 10**12 if whole else share
            if units == 0:
                continue
            with env.anchor(), boa.env.prank(who):
                p.engine.withdraw(p.usd.address, units, who)
