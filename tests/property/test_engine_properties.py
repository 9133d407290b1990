"""MarginEngine properties under random sequences of deposits, withdrawals, fills and price moves.

- the margin rule: after a fill or withdrawal that went through, each account it touched has
  H_IM >= 0, or its H_MM is no lower than before the action;
- a witness never proves a healthy account unhealthy: every scenario value is >= H_MM, and the
  witness scenario reproduces it exactly;
- accounting: the engine's WETH balance equals the underlying it credits, exactly, and its USD
  balance covers the net cash it owes (positive balances minus debts);
- non-price actions never push an uninvolved account from H_MM >= 0 to H_MM < 0.
"""

from __future__ import annotations

import boa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests import protocol as P  # noqa: N812
from tests.conftest import scaled

WAD = 10**18
E1, E2 = P.expiry_in(8), P.expiry_in(36)
TRADERS = 3


_WORLD: dict[str, object] = {}


def _world() -> tuple[boa.Env, P.Protocol, list[int], P.Maker]:
    """One deployment in its own titanoboa Env, shared by every example (each runs in an
    anchor of it, so examples never see each other's state and compile only once)."""
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
            ]
            dealer = P.Maker.new("dealer")
            p.fund(dealer.address, usd=5_000_000, weth=50)
        _WORLD.update(env=env, p=p, series=series, dealer=dealer)
    return _WORLD["env"], _WORLD["p"], _WORLD["series"], _WORLD["dealer"]  # type: ignore[return-value]


class EngineMachine(RuleBasedStateMachine):
    @initialize()
    def deploy(self) -> None:
        env, self.p, self.series, self.dealer = _world()
        self._swap = boa.swap_env(env)
        self._swap.__enter__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.traders = [boa.env.generate_address(f"trader{i}") for i in range(TRADERS)]
        self.nonce = 0

    def teardown(self) -> None:
        if hasattr(self, "_anchor"):
            self._anchor.__exit__(None, None, None)
            self._swap.__exit__(None, None, None)

    def _mm(self) -> dict[str, int]:
        return {a: self.p.engine.health(a, False)[0] for a in self.traders}

    def _check_rule(self, account: str, before_mm: int) -> None:
        _, h_im, h_mm = self.p.engine.margin(account)
        assert h_im >= 0 or h_mm >= before_mm

    @rule(i=st.integers(0, TRADERS - 1), usd=st.integers(0, 50_000), weth=st.integers(0, 5))
    def deposit(self, i: int, usd: int, weth: int) -> None:
        if usd or weth:
            self.p.fund(self.traders[i], usd=usd, weth=weth)

    @rule(i=st.integers(0, TRADERS - 1), cash=st.booleans(), fraction=st.floats(0.01, 1.2))
    def withdraw(self, i: int, cash: bool, fraction: float) -> None:
        account = self.traders[i]
        before = self._mm()
        if cash:
            amount = int(max(self.p.engine.cash(account), 0) * fraction) // 10**12
            token = self.p.usd.address
        else:
            amount = int(self.p.engine.underlying_balance(account) * fraction)
            token = self.p.weth.address
        if amount == 0:
            return
        try:
            with boa.env.prank(account):
                self.p.engine.withdraw(token, amount, account)
        except boa.BoaError:
            return
        self._check_rule(account, before[account])
        self._uninvolved_stay_healthy(before, {account})

    @rule(
        i=st.integers(0, TRADERS - 1),
        k=st.integers(0, 2),
        buy=st.booleans(),
        size=st.integers(1, 40),
        price=st.integers(1, 400),
    )
    def fill(self, i: int, k: int, buy: bool, size: int, price: int) -> None:
        account = self.traders[i]
        before = self._mm()
        self.nonce += 1
        order = self.dealer.order(
            self.series[k], buy, size * WAD // 10, price * WAD, nonce=self.nonce
        )
        try:
            with boa.env.prank(account):
                self.p.engine.fill(
                    P.as_tuple(order),
                    self.dealer.sign(self.p, order),
                    size * WAD // 10,
                    account,
                )
        except boa.BoaError:
            return
        self._check_rule(account, before[account])
        self._uninvolved_stay_healthy(before, {account})

    @rule(move=st.floats(-0.25, 0.25))
    def price_move(self, move: float) -> None:
        self.p.set_spot(3000 * (1 + move))

    def _uninvolved_stay_healthy(self, before: dict[str, int], involved: set[str]) -> None:
        after = self._mm()
        for account, h in before.items():
            if account not in involved and h >= 0:
                assert after[account] >= 0

    @invariant()
    def witness_never_lies(self) -> None:
        if not hasattr(self, "p"):
            return
        for account in self.traders:
            h, w = self.p.engine.health(account, False)
            assert self.p.engine.scenario_health(account, w, False) == h
            other = (w + 7) % 21
            assert self.p.engine.scenario_health(account, other, False) >= h

    @invariant()
    def engine_holds_what_it_owes(self) -> None:
        if not hasattr(self, "p"):
            return
        e = self.p.engine
        assert self.p.weth.balanceOf(e.address) == e.total_underlying()
        owed = e.total_cash_shares() * e.cash_share_price() // WAD - e.total_cash_debt()
        assert self.p.usd.balanceOf(e.address) * 10**12 >= owed


TestEngineMachine = EngineMachine.TestCase
TestEngineMachine.settings = settings(
    max_examples=scaled(12), stateful_step_count=15, deadline=None, database=None
)
