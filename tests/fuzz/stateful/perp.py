"""PerpMachine: contracts/margin/PerpBook.vy under a coalition of accounts that trade with each
other (wash trades included, at any price in the band), are settled, liquidated into each
other and re-parametrized, while the index price and time move.

The engine is tests/contracts/PerpEngineStub.vy (PerpBook's only writer, forwarding the
machine's calls; its risk admin; an oracle answering the price the machine sets), on the revm
harness. Beside the contract runs
keeper/perp.py's `PerpBook` (the twin, the same integers) and a second twin rebuilt from the
contract's events alone (the mirror). The cash each call returns is summed per account, as
the engine would credit it.

Invariants after every step:
- `funding_is_zero_sum`: the accounts' settled cash plus what their positions would settle to
  now sums to at most 0 (price PnL and funding pass between longs and shorts; every rounding
  takes from an account), and to no less than minus a wei per touch plus a wei per open
  position;
- `open_interest_balances`: the longs' total equals the shorts' total equals `open_interest`;
- `perp_twin_agrees` and `perp_mirror_from_events_agrees`: the twin's and the event mirror's
  market and position words, and the cash, equal the contract's to the wei;
- `premium_within_band`: the mark's premium stays within the band.
Post-conditions: `funding_within_cap` (a settlement charges at most max_rate * |q| * S per hour
since the market's last accrual) and `move_passes_the_fraction` (a
liquidation moves q * f rounded toward zero and leaves the rest).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from keeper import perp as kp
from tests.fuzz.stateful.base import STATS, always, mark, postcondition
from tests.harness.revm import Chain
from tests.unit.margin import golden_perp

WAD = 10**18
ACCOUNTS = 4  # one owner's coalition: every account trades with, and liquidates, the others
T0 = 1_800_000_000
S0 = 2_000 * WAD

accounts = st.integers(0, ACCOUNTS - 1)
others = st.integers(1, ACCOUNTS - 1)


class PerpMachine(RuleBasedStateMachine):
    """See the module."""

    @initialize(params=st.integers(0, len(golden_perp.PARAMS) - 1))
    def start(self, params: int) -> None:
        self.chain = Chain()
        self.chain.set_timestamp(T0)
        self.engine = self.chain.deploy("tests/contracts/PerpEngineStub.vy")
        self.book = self.chain.deploy("contracts/margin/PerpBook.vy", self.engine.address)
        self.engine.set_book(self.book.address)
        self.names = [self.chain.new_account(f"perp coalition {i}") for i in range(ACCOUNTS)]
        self.index_of = {n.lower(): str(i) for i, n in enumerate(self.names)}
        p = golden_perp.PARAMS[params]
        self.book.list_perp(p.band, p.half_life, p.convergence_hours, p.max_rate)
        self.twin = kp.PerpBook(kp.new_market(p, T0))
        self.mirror = self._replay(self.book.get_logs(), None)
        self.cash = [0] * ACCOUNTS
        self.spot = S0
        self.now = T0
        self.touches = 0
        STATS["examples"] += 1

    # -- helpers -------------------------------------------------------------------------------

    def _replay(self, logs: list[Any], mirror: kp.PerpBook | None) -> kp.PerpBook:
        """The event mirror after these logs, its accounts named as the twin's."""
        return kp.replay(
            ((log.name, {k: self.index_of.get(str(v).lower(), v) for k, v in log.args.items()})
             for log in logs),
            mirror,
        )  # fmt: skip

    def _engine(self, method: str, *args: Any) -> Any:
        out = getattr(self.engine, method)(*args)
        self.mirror = self._replay(self.book.get_logs(), self.mirror)
        return out

    # -- rules ---------------------------------------------------------------------------------

    @rule(buyer=accounts, offset=others, size=st.integers(1, 10**6 * WAD),
          where=st.integers(-1_000_000, 1_000_000))  # fmt: skip
    def fill(self, buyer: int, offset: int, size: int, where: int) -> None:
        """A fill between two of the coalition's accounts at a price `where` millionths of the
        band from the index (the band's edges included)."""
        seller = (buyer + offset) % ACCOUNTS
        band = self.twin.market.params.band
        price = self.spot + band * self.spot // WAD * where // 10**6
        try:
            want = self.twin.fill(str(buyer), str(seller), size, price, self.spot, self.now)
        except kp.PerpError as exc:
            mark("perp fill refused")
            with self.chain.reverts(str(exc)):
                self.engine.trade(self.names[buyer], self.names[seller], size, price, self.spot)
            return
        got = self._engine("trade", self.names[buyer], self.names[seller], size, price, self.spot)
        assert tuple(got) == want
        self.cash[buyer] += got[0]
        self.cash[seller] += got[1]
        self.touches += 2

    @rule(account=accounts, hours=st.sampled_from((0, 1)))
    def settle(self, account: int, hours: int) -> None:
        """settle_perp(account), after `hours` hours at a fixed index."""
        self.time(hours * 3_600)
        market = self.twin.market
        got = self._engine("settle", self.names[account], self.spot)
        assert got == self.twin.settle(str(account), self.spot, self.now)
        self.cash[account] += got
        self.touches += 1
        self.funding_within_cap(market)

    @postcondition
    def funding_within_cap(self, market: kp.Market) -> None:
        """The funding index a settlement accrued over the dt seconds since the market's last
        accrual, at the settlement's index S, moved by at most max_rate * S * dt / 3600 (its
        increment rounds toward zero, so the bound is exact): no position pays more than
        max_rate * |q| * S an hour."""
        dt = self.now - market.funding_time
        increment = self.twin.market.index - market.index
        assert abs(increment) * 3_600 * WAD <= market.params.max_rate * self.spot * dt

    @rule(source=accounts, offset=others, fraction=st.integers(1, WAD))
    def liquidate(self, source: int, offset: int, fraction: int) -> None:
        """A liquidation's move of `fraction` of the source's position to another account."""
        target = (source + offset) % ACCOUNTS
        size = self.twin.positions.get(str(source), kp.Position()).size
        kept = self.twin.positions.get(str(target), kp.Position()).size
        got = self._engine("move", self.names[source], self.names[target], fraction, self.spot)
        assert tuple(got) == self.twin.move(str(source), str(target), fraction, self.spot, self.now)
        self.cash[source] += got[0]
        self.cash[target] += got[1]
        self.touches += 2
        self.move_passes_the_fraction(source, target, size, kept, fraction)

    @postcondition
    def move_passes_the_fraction(
        self, source: int, target: int, size: int, kept: int, fraction: int
    ) -> None:
        """q * f rounded toward zero moved from the source to the target; the rest stayed."""
        moved = abs(size) * fraction // WAD * (1 if size >= 0 else -1)
        assert self.book.position(self.names[source])[0] == size - moved
        assert self.book.position(self.names[target])[0] == kept + moved

    @rule(move=st.integers(-50_000, 50_000))
    def index_moves(self, move: int) -> None:
        """The index price moves by `move` millionths (nothing is sent: the next touch uses it)."""
        self.spot = max(self.spot * (10**6 + move) // 10**6, 1)

    @rule(seconds=st.sampled_from((0, 1, 12, 600, 3_600, 86_400)))
    def time(self, seconds: int) -> None:
        self.now += seconds
        self.chain.set_timestamp(self.now)

    @precondition(lambda self: self.touches > 0)
    @rule(params=st.integers(0, len(golden_perp.PARAMS) - 1))
    def set_params(self, params: int) -> None:
        """The risk admin re-parametrizes at the oracle's index."""
        q = golden_perp.PARAMS[params]
        self.engine.set_spot(self.spot)
        self.book.set_params(q.band, q.half_life, q.convergence_hours, q.max_rate)
        self.mirror = self._replay(self.book.get_logs(), self.mirror)
        self.twin.set_params(q, self.spot, self.now)

    @rule(account=accounts)
    def intruder(self, account: int) -> None:
        """Nobody but the engine writes, nobody but the risk admin re-parametrizes."""
        a = self.names[account]
        with self.chain.reverts("perp: not the engine"):
            self.book.settle(a, self.spot, sender=a)
        q = golden_perp.PARAMS[0]
        with self.chain.reverts("perp: not the risk admin"):
            self.book.set_params(q.band, q.half_life, q.convergence_hours, q.max_rate, sender=a)

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def check_properties(self) -> None:
        STATS["steps"] += 1
        self.funding_is_zero_sum()
        self.open_interest_balances()
        self.perp_twin_agrees()
        self.perp_mirror_from_events_agrees()
        self.premium_within_band()

    @always
    def funding_is_zero_sum(self) -> None:
        index = kp.index_at(self.twin.market, self.spot, self.now)
        pending = 0
        open_positions = 0
        for p in self.twin.positions.values():
            if p.size:
                open_positions += 1
                pending += kp.settle(p, self.spot, index)[1]
        total = sum(self.cash) + pending
        assert -(self.touches + open_positions) <= total <= 0, (total, self.touches)

    @always
    def open_interest_balances(self) -> None:
        sizes = [self.book.position(n)[0] for n in self.names]
        longs = sum(q for q in sizes if q > 0)
        assert longs == -sum(q for q in sizes if q < 0) == self.book.open_interest()

    @always
    def perp_twin_agrees(self) -> None:
        assert kp.pack_market(self.twin.market) == tuple(
            self.book.market_words(i) for i in range(2)
        )
        for i, n in enumerate(self.names):
            words = tuple(self.book.position_words(n, j) for j in range(2))
            twin = self.twin.positions.get(str(i))
            # An account that never traded is two zero words.
            assert (kp.pack_position(twin) if twin else (0, 0)) == words, i
        assert self.cash == [self.twin.cash.get(str(i), 0) for i in range(ACCOUNTS)]

    @always
    def perp_mirror_from_events_agrees(self) -> None:
        assert kp.pack_market(self.mirror.market) == kp.pack_market(self.twin.market)
        for i in range(ACCOUNTS):
            pos = (self.mirror.positions.get(str(i)), self.twin.positions.get(str(i)))
            assert (pos[0] and kp.pack_position(pos[0])) == (pos[1] and kp.pack_position(pos[1])), i
        assert self.mirror.cash == self.twin.cash
        assert self.mirror.open_interest == self.book.open_interest()

    @always
    def premium_within_band(self) -> None:
        m = self.book.market()
        assert abs(m[0]) <= kp.PerpParams.unpack(m[4]).band
