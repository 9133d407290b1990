"""The shared base of the stateful machines: chain access, the ghost model, health reads and
every property the suite checks.

A machine is `KappaMachine` plus rule mixins (tests/fuzz/stateful/rules.py). Each rule is
declared with `@step(...)` instead of Hypothesis' `@rule(...)`: it says whether the rule moves
the market (price, vol, time, listing, settlement prices) and, inside, which accounts it may
change (`self.allow(...)`). After every step the machine reads the engine's whole accounting
state in one call (tests/fuzz/contracts/FuzzLens.vy) and the invariants compare it with the
state before the step and with the ghost model (tests/fuzz/stateful/ghost.py).

Properties come in two kinds, both counted by `properties()`:
- invariants (`@always`), checked after every step (by one Hypothesis `@invariant`);
- post-conditions (`@postcondition`), checked by the rules right after the action they concern,
  when they need values from before it (health before a fill, the state before a deposit).

Health (MtM, H_IM, H_MM) is read from the contract (`engine.margin`) only where a property needs
it, and cached per account until its state or the market changes. Every value read is checked
against keeper/margin.py (`mirror_agrees_with_contract`); the narrower MirrorMachine reads every
account on every step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import event
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from keeper import perp as kp
from keeper.interest import BP, BPS, Pool, RateParams, debt_value, supply_value
from keeper.series import unpack_position
from tests.deployment import WAD
from tests.fuzz.protocol_revm import USD_SCALE, Maker
from tests.fuzz.stateful import mirror
from tests.fuzz.stateful.ghost import Ghost, Holdings
from tests.fuzz.stateful.world import INTEREST, SeriesInfo, World, world
from tests.harness.revm import Reverted

F = TypeVar("F", bound=Callable[..., Any])

ORACLE_DOWN = frozenset({"oracle: too few fresh sources"})
# Totals over the whole process, for the pytest summary and bench/fuzz.py.
STATS = {
    "steps": 0,
    "examples": 0,
    "fills": 0,
    "perp_fills": 0,
    "max_positions": 0,
    "health_reads": 0,
    "mirror_checks": 0,
}


def mark(text: str) -> None:
    """Hypothesis `event(text)`: counted per run (--hypothesis-show-statistics) to show which
    paths the machines took; a no-op when a machine is driven by hand outside a test."""
    if currently_in_test_context():
        event(text)


_POSTCONDITIONS: list[str] = []
_INVARIANTS: list[str] = []
# Invariants that read the market too (run even after steps that sent no transaction).
_MARKET_INVARIANTS = {"mirror_agrees_with_contract"}


def postcondition(fn: F) -> F:
    """Mark a method as a post-condition property (counted by `properties()`)."""
    _POSTCONDITIONS.append(fn.__name__)
    return fn


def always(fn: F) -> F:
    """Mark a method as an invariant: `KappaMachine.check_properties` runs it after every step.

    One Hypothesis `@invariant` runs them all, in declaration order: Hypothesis spends ~30 us
    of bookkeeping per invariant call, a tenth of a cheap step."""
    _INVARIANTS.append(fn.__name__)
    return fn


def step(market: bool = False, **strategies: Any) -> Callable[[F], F]:
    """`@rule(**strategies)` with the step bookkeeping around it.

    `market=True` for rules that move what the margin model reads of the market (every
    account's health may change: no account-level property applies to them)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapped(self: KappaMachine, **kwargs: Any) -> None:
            self._begin(market)
            fn(self, **kwargs)
            self._end()

        return rule(**strategies)(wrapped)  # type: ignore[no-any-return]

    return decorate


@dataclass(frozen=True)
class Health:
    """MtM, H_IM and H_MM (USD wad); mtm and im are None for an H_MM-only read."""

    mtm: int | None
    im: int | None
    mm: int


@dataclass(frozen=True)
class MirrorRead:
    """A health value read from the contract, with what the mirror needs to recompute it."""

    step: int
    account: str
    book: mirror.Book
    market: mirror.MarketData
    health: Health


@dataclass(frozen=True)
class Snapshot:
    """The engine's accounting state (one FuzzLens call)."""

    usd_balance: int
    weth_balance: int
    share_price: int
    total_shares: int
    total_debt: int
    total_underlying: int
    bad_debt: int  # Liquidator.bad_debt()
    insurance_fund: int  # Liquidator.insurance_fund()
    # share_price is the supply index; with the borrow index, utilization and the reserve it is
    # MarginEngine.cash_pool (accrued to the read's block time).
    borrow_index: int
    utilization: int
    reserve: int
    accounts: dict[str, Holdings]

    def cash(self, h: Holdings) -> int:
        """An account's cash at this snapshot's indices (MarginEngine._cash)."""
        return supply_value(h.shares, self.share_price) - debt_value(h.debt, self.borrow_index)


class KappaMachine(RuleBasedStateMachine):
    """The protocol with TRADERS traders, an operator, an outsider, a backstop bidder and the
    insurance fund (see world.py); no rules of its own (see rules.py)."""

    # Read every tracked account's health (and check the mirror) after every step.
    health_every_step = False

    # -- setup ---------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        self.w: World = world()
        self.chain = self.w.chain
        self.chain.revert(self.w.base)
        self.p = self.w.p
        self.engine = self.p.engine
        self.traders: list[Maker] = self.w.traders
        self.accounts: list[str] = self.w.accounts
        self.series: dict[int, SeriesInfo] = dict(self.w.series)
        self.spot = self.p.oracle.price()[0]
        self.live: list[int] = list(self.live_expiries())  # kept by the listing and settle rules
        vol = self.p.vol
        self.vol_params = (vol.vol_min(), vol.vol_max(), vol.vol_heartbeat(), vol.stale_markup())
        self.paused = False
        self.nonce = 0
        self.orders: list[tuple[dict[str, Any], bytes]] = []
        self.operator_of: dict[str, bool] = {t.address: i < 2 for i, t in enumerate(self.traders)}
        self.market_version = 0
        self.versions: dict[str, int] = dict.fromkeys(self.accounts, 0)
        self._health: dict[str, tuple[tuple[int, int], Health | None]] = {}
        self._market: tuple[int, mirror.MarketData | None] | None = None
        self._mirror_queue: list[MirrorRead] = []
        self.steps = 0
        self._socialized_seen = 0
        self.allowed: set[str] = set()
        self.market_contracts = {
            c.address for c in (*self.p.feeds, self.p.vol, self.p.sequencer_feed)
        }
        self.market_step = False
        self.dirty = False
        self.now = self.read_state()
        self.prev = self.now
        self.ghost = Ghost(
            {a: h.copy() for a, h in self.now.accounts.items()},
            self.series,
            pool=self.initial_pool(self.now),
            clock=lambda: self.chain.timestamp,
            usd_ledger=self.now.usd_balance * USD_SCALE,
            weth_ledger=self.now.weth_balance,
            perps=kp.PerpBook(
                kp.unpack_market(tuple(self.p.perp_book.market_words(i) for i in (0, 1)))
            ),
        )
        self.account_of = {a.lower(): a for a in self.accounts}
        self._indices_seen = (self.now.share_price, self.now.borrow_index, 0)
        STATS["examples"] += 1
        self.setup_accounts()

    def initial_pool(self, s: Snapshot) -> Pool:
        """The ghost's cash pool at the world's base: the world's interest parameters, the
        indices and totals read, last accrued at the base's block (its deposits touched cash
        there), and the reserve offset that makes the reserve the engine's (0 at the base)."""
        assert s.reserve == 0, "the base holds no reserve"
        pool = Pool(
            RateParams(*INTEREST),
            borrow_index=s.borrow_index,
            supply_index=s.share_price,
            last=self.chain.timestamp,
            total_supply_shares=s.total_shares,
            total_borrow_shares=s.total_debt,
        )
        pool.reserve_offset = s.total_debt * s.borrow_index - s.total_shares * s.share_price
        for a, h in s.accounts.items():
            pool.shares[a], pool.debts[a] = h.shares, h.debt
        return pool

    def setup_accounts(self) -> None:
        """Hook for machines that want the accounts in another starting shape (run in `start`,
        after the ghost is built: apply every action to it)."""

    # -- chain access --------------------------------------------------------------------------

    def read_state(self) -> Snapshot:
        words = self.w.lens.state(
            self.engine.address,
            self.p.usd.address,
            self.p.weth.address,
            self.p.liquidator.address,
            self.accounts,
        )
        accounts: dict[str, Holdings] = {}
        i = 11
        for a in self.accounts:
            shares, debt, underlying, n = words[i : i + 4]
            positions = []
            for packed in words[i + 4 : i + 4 + n]:
                positions.append(list(unpack_position(packed)))
            perp = kp.unpack_position((words[i + 4 + n], words[i + 5 + n]))
            accounts[a] = Holdings(
                shares, debt, underlying, positions, (perp.size, perp.price, perp.index)
            )
            i += 6 + n
        self.dirty = False
        self._read_time = self.chain.timestamp
        fund = words[7] - 2**256 if words[7] >= 2**255 else words[7]
        return Snapshot(*words[:7], fund, *words[8:11], accounts)

    def current(self) -> Snapshot:
        """The engine's state now (read again only if a transaction ran since the last read;
        accounts that changed get a new version, which invalidates their cached health). Time
        moving is a change too: cash accrues interest to the block time of the read."""
        if self.dirty or self.chain.timestamp != self._read_time:
            old, self.now = self.now, self.read_state()
            repriced = (self.now.share_price, self.now.borrow_index) != (
                old.share_price,
                old.borrow_index,
            )
            for a in self.accounts:
                # A new cash share price revalues every holder's cash (a socialized loss).
                if repriced or self.now.accounts[a] != old.accounts[a]:
                    self.versions[a] += 1
        return self.now

    def send(self, fn: Any, *args: Any, sender: str) -> Any:
        """A state-changing call; raises Reverted. A call to a price feed, the vol oracle or the
        sequencer feed cannot reach the engine's storage (none of them calls the engine), so it
        does not force a new read of the engine's state."""
        if fn.contract.address not in self.market_contracts:
            self.dirty = True
        if self.market_step:
            self.market_moved()
        return fn(*args, sender=sender)

    def market_moved(self) -> None:
        """Invalidate every cached health and market read (prices, vols or time moved)."""
        self.market_version += 1

    def attempt(
        self, label: str, fn: Any, *args: Any, sender: str, allowed: Iterable[str] = ()
    ) -> tuple[bool, Any]:
        """Try a call that may revert for one of the `allowed` reasons (any other reason fails
        the run). Labels the outcome with `event` so a run reports which paths it took."""
        try:
            out = self.send(fn, *args, sender=sender)
        except Reverted as e:
            reason = e.reason or f"bare revert 0x{e.data.hex()}"
            mark(f"{label}: reverted {reason}")
            assert reason in allowed, f"{label}: unexpected revert {reason!r}"
            return False, e.reason
        mark(f"{label}: ok")
        return True, out

    def allow(self, *accounts: str) -> None:
        """Declare the accounts the current step may change (its owner acts, or the owner's
        operator, or a maker's signature, or a permissionless settlement)."""
        self.allowed.update(accounts)

    def _begin(self, market: bool) -> None:
        self.allowed = set()
        self.market_step = market
        self.prev = self.current()
        self.steps += 1
        STATS["steps"] += 1

    def _end(self) -> None:
        self.current()
        if self.market_step:
            self.market_moved()
        if self.health_every_step:
            for a in self.accounts:
                self.health(a)

    # -- market and health ---------------------------------------------------------------------

    def _market_data(self) -> mirror.MarketData | None:
        """The cached market read, if it is current (never reads the chain)."""
        if self._market is not None and self._market[0] == self.market_version:
            return self._market[1]
        return None

    def market(self) -> mirror.MarketData | None:
        """What the margin model reads of the market now; None while the oracle has no price."""
        if self._market is not None and self._market[0] == self.market_version:
            return self._market[1]
        try:
            spot, confidence, _ = self.p.oracle.price()
        except Reverted as e:
            assert e.reason in ORACLE_DOWN, e.reason
            data = None
        else:
            live = tuple(self.live)
            expiries = live + tuple({s.expiry for s in self.series.values()} - set(live))
            entries = {e: tuple(self.p.vol.entry(e)) for e in expiries}
            data = mirror.MarketData(
                spot,
                confidence,
                self.chain.timestamp,
                live,
                entries,  # type: ignore[arg-type]
                dict(self.ghost.settlement),
                *self.vol_params,
            )
        self._market = (self.market_version, data)
        return data

    def live_expiries(self) -> tuple[int, ...]:
        """The engine's live expiries (its public DynArray, read item by item)."""
        out: list[int] = []
        while True:
            try:
                out.append(self.engine.live_expiries(len(out)))
            except Reverted:
                return tuple(out)

    def health(self, account: str, full: bool = True) -> Health | None:
        """(MtM, H_IM, H_MM) of the account from the contract (`full=False`: H_MM only, half
        the cost), None while the oracle has no price. Cached until the account's state or the
        market changes; queued for the mirror."""
        state = self.current()
        key = (self.market_version, self.versions[account])
        hit = self._health.get(account)
        if (
            hit is not None
            and hit[0] == key
            and (hit[1] is None or hit[1].im is not None or not full)
        ):
            return hit[1]
        market = self.market()
        if market is None:
            self._health[account] = (key, None)
            return None
        if full:
            h = Health(*self.engine.margin(account))
        else:
            h = Health(None, None, self.engine.health(account, False)[0])
        STATS["health_reads"] += 1
        self._health[account] = (key, h)
        book = self.book(state.accounts[account], state)
        self._mirror_queue.append(MirrorRead(self.steps, account, book, market, h))
        return h

    def book(self, h: Holdings, state: Snapshot) -> mirror.Book:
        # Cash with interest accrued to the health read's block time.
        cash = self.ghost.pool.at(self.chain.timestamp).cash_of(h.shares, h.debt)
        positions = tuple(
            (s.strike, s.expiry, s.is_call, size)
            for s, size in ((self.series[sid], size) for sid, size in h.positions)
        )
        return mirror.Book(cash, h.underlying, positions, self.perp_terms(h))

    def perp_terms(self, h: Holdings) -> tuple[int, int, int]:
        """(q, P, Phi) of the account's perp now, by the twin: funding accrued to the block
        time at the oracle spot, rounded up (PerpBook.margin_terms)."""
        size, price, index = h.perp
        g = self.ghost.perps
        market = self.market()
        if size == 0 or g is None or market is None:
            return 0, 0, 0
        now_index = kp.index_at(g.market, market.spot, self.chain.timestamp)
        return size, price, kp.funding_owed(kp.Position(size, price, index), now_index)

    def holds_stale_vol(self, account: str) -> bool:
        """Whether the account holds a live position whose expiry's vol entry is stale (as
        contracts/math/smile.vy is_stale decides)."""
        now = self.chain.timestamp
        heartbeat = self.vol_params[2]
        for sid, _ in self.current().accounts[account].positions:
            expiry = self.series[sid].expiry
            if expiry > now:
                updated = self.p.vol.entry(expiry)[2]
                if updated > now or now - updated > heartbeat:
                    return True
        return False

    def has_positions(self, account: str) -> bool:
        """Whether the account holds an option position or a perp (MarginEngine._holds_risk)."""
        h = self.current().accounts[account]
        return bool(h.positions) or h.perp[0] != 0

    def cash(self, account: str) -> int:
        s = self.current()
        return s.cash(s.accounts[account])

    # -- invariants (after every step) -----------------------------------------------------

    @invariant()
    def check_properties(self) -> None:
        """Run every `@always` property of this machine after `start` and every step.

        They read the engine's state (the lens snapshot, the contracts' storage) and the ghost,
        which only a transaction changes: after a step that sent none outside the price feeds,
        the vol oracle and the sequencer feed (a pure price, vol or time move: `self.now is
        self.prev`), only the market-dependent ones run."""
        quiet = self.now is self.prev and self.steps > 0
        for name in _INVARIANTS:
            if quiet and name not in _MARKET_INVARIANTS:
                continue
            check = getattr(self, name, None)
            if check is not None:
                check()

    def teardown(self) -> None:
        if hasattr(self, "_mirror_queue"):
            self.flush_mirror(everything=True)

    @always
    def engine_is_solvent(self) -> None:
        """The engine holds at least what it owes: its USD balance covers the cash pool
        (positive balances) net of debts, of the payoffs of settled expiries not yet
        collected (a long's is owed by the engine, a short's is owed to it) and of the perps'
        unsettled value, less the recorded deficit, and its WETH balance covers every
        underlying balance."""
        s = self.now
        owed = (
            supply_value(s.total_shares, s.share_price)
            - debt_value(s.total_debt, s.borrow_index)
            + self.pending_payoffs()
            # The perps' value not yet settled: owed to (or by) their holders, in cash.
            + self.ghost.perp_unsettled()
        )
        # A loss beyond the whole cash pool is credited unbacked and recorded as the deficit.
        owed -= self.ghost.deficit
        assert s.usd_balance * USD_SCALE >= owed, (s.usd_balance, owed)
        assert s.weth_balance >= s.total_underlying

    def pending_payoffs(self) -> int:
        """Payoffs of positions in settled expiries still held (they turn into cash when the
        account is next settled, at exactly these amounts)."""
        g = self.ghost
        return sum(
            g.payoff(sid, size)
            for h in self.now.accounts.values()
            for sid, size in h.positions
            if self.series[sid].expiry in g.settlement
        )

    @always
    def totals_are_sums_of_accounts(self) -> None:
        """The engine's totals (cash shares, debt, underlying) equal the sums over accounts."""
        s = self.now
        accounts = s.accounts.values()
        assert s.total_shares == sum(h.shares for h in accounts)
        assert s.total_debt == sum(h.debt for h in accounts)
        assert s.total_underlying == sum(h.underlying for h in accounts)

    @always
    def no_account_holds_shares_and_debt(self) -> None:
        """An account's cash is shares or debt, never both: `MarginEngine._cash` reads one of
        the two balances on that strength."""
        assert all(h.shares == 0 or h.debt == 0 for h in self.now.accounts.values())

    @always
    def ghost_matches_chain(self) -> None:
        """Every account holds exactly what the ghost model says: cash shares, debt, underlying
        and positions (the engine's accounting agrees with its specification, action by
        action)."""
        pool = self.ghost.pool.at(self.chain.timestamp)
        assert (self.now.share_price, self.now.borrow_index) == (
            pool.supply_index,
            pool.borrow_index,
        )
        assert self.now.reserve == pool.reserve()
        for a in self.accounts:
            got, want = self.now.accounts[a], self.ghost.holdings(a)
            assert (got.shares, got.debt, got.underlying) == (
                want.shares,
                want.debt,
                want.underlying,
            ), (a, got, want)
            assert got.sizes() == want.sizes(), (a, got.positions, want.positions)
            assert got.perp == want.perp, (a, got.perp, want.perp)

    @always
    def perp_market_matches_ghost(self) -> None:
        """PerpBook's market (mark premium, times, funding index, parameters) and open interest
        are exactly the twin's, which replayed every perp event the machine saw."""
        g = self.ghost.perps
        if g is None:
            return
        book = self.p.perp_book
        assert (book.market_words(0), book.market_words(1)) == kp.pack_market(g.market)
        assert book.open_interest() == g.open_interest

    @always
    def perp_pnl_is_zero_sum(self) -> None:
        """Funding and price PnL are zero-sum up to rounding in the protocol's favour: the cash
        every perp settlement paid out plus the perps' value still unsettled (exactly,
        sum q (F0 - P), while longs and shorts net to zero) is at most zero and loses less
        than one wei per settlement."""
        g = self.ghost.perps
        if g is None:
            return
        sizes = [p.size for p in g.positions.values()]
        assert sum(sizes) == 0, sizes
        total = self.ghost.perp_cash * WAD + sum(
            p.size * (p.index - p.price) for p in g.positions.values()
        )
        assert -self.ghost.perp_settlements * WAD <= total <= 0, (
            total,
            self.ghost.perp_settlements,
        )

    @always
    def debts_add_up_to_total_borrows(self) -> None:
        """Sum of debts = total borrows within 1 wei per account (each debt rounds up, the total
        once), and the supply balances add up to the total supply within 1 wei per account
        (each rounds down)."""
        s = self.now
        n = len(s.accounts)
        debts = sum(debt_value(h.debt, s.borrow_index) for h in s.accounts.values())
        assert 0 <= debts - debt_value(s.total_debt, s.borrow_index) <= n, debts
        supply = sum(supply_value(h.shares, s.share_price) for h in s.accounts.values())
        assert 0 <= supply_value(s.total_shares, s.share_price) - supply <= n, supply

    @always
    def indices_never_decrease(self) -> None:
        """The borrow index never decreases; the supply index falls only by a socialized loss
        (the supply side bears it, never a debt)."""
        supply, borrow, socialized = self._indices_seen
        s = self.now
        assert s.borrow_index >= borrow, (s.borrow_index, borrow)
        assert s.share_price >= supply or self.ghost.socialized > socialized, (
            s.share_price,
            supply,
        )
        self._indices_seen = (s.share_price, s.borrow_index, self.ghost.socialized)

    @always
    def interest_is_conserved(self) -> None:
        """Interest paid by borrowers = interest earned by suppliers + the reserve, up to
        rounding in the protocol's favour: the engine's reserve (uncollected) is exactly the
        interest charged less the interest credited less what the fund collected (plus the
        rounding transfers between accounts kept, never negative), suppliers never earn more
        than (1 - reserve factor) of the interest, and the reserve is never negative."""
        pool = self.ghost.pool.at(self.chain.timestamp)
        charged, credited = pool.interest_charged, pool.interest_credited
        keep = pool.params.reserve_factor // BP
        assert credited * BPS <= charged * (BPS - keep), (credited, charged)
        assert pool.transfer_dust >= 0, pool.transfer_dust
        kept = charged - credited - pool.collected * WAD + pool.transfer_dust
        assert self.now.reserve == kept // WAD >= 0, (self.now.reserve, kept)

    @postcondition
    def utilization_within_cap(self, account: str, debt_before: int) -> None:
        """An action that borrowed (raised the account's borrow shares) left utilization
        within the cap, so 1 - cap of the supply stays in the engine for withdrawals."""
        s = self.current()
        if s.accounts[account].debt > debt_before:
            mark("borrow: within the utilization cap")
            assert s.utilization <= self.ghost.pool.params.utilization_cap, s.utilization

    @always
    def options_are_zero_sum(self) -> None:
        """Every long has a short: per series, the open sizes plus the sizes already settled
        add up to zero."""
        total = dict(self.ghost.settled_size)
        for h in self.now.accounts.values():
            for sid, size in h.positions:
                total[sid] = total.get(sid, 0) + size
        assert all(v == 0 for v in total.values()), total

    @always
    def cash_is_conserved(self) -> None:
        """No action creates cash: the accounts' cash (with the payoffs of settled expiries
        still to be collected) adds up to the USD that entered the engine (deposits, hedge
        proceeds) minus what left it, less rounding the protocol keeps, which never exceeds the
        rounding budget (premiums and settlements move cash between accounts, zero-sum)."""
        s, g = self.now, self.ghost
        claims = sum(s.cash(h) for h in s.accounts.values())
        # Positions in settled expiries not yet moved into cash are claims (or debts) already,
        # and so is the perps' unsettled value (rounded down once over all accounts).
        claims += self.pending_payoffs() + self.ghost.perp_unsettled()
        # The interest reserve not yet paid to the fund is kept too (interest_is_conserved).
        kept = g.usd_ledger - claims + g.deficit - s.reserve
        budget = g.dust_budget + 2 * len(self.accounts) * (1 + len(self.series)) + 1
        assert 0 <= kept <= budget, (kept, budget)

    @always
    def underlying_is_conserved(self) -> None:
        """Underlying balances add up exactly to the WETH that entered minus what left, and the
        engine's WETH balance is exactly that (nothing is created or lost)."""
        s = self.now
        assert sum(h.underlying for h in s.accounts.values()) == self.ghost.weth_ledger
        assert s.weth_balance == self.ghost.weth_ledger

    @always
    def only_authorised_accounts_change(self) -> None:
        """No step changes an account it was not entitled to: only the account's owner, its
        operator, a fill of its own signed order, or settlement of its expired positions
        (value-neutral, checked by the ghost) change its balances or positions."""
        for a in self.accounts:
            if self.now.accounts[a] != self.prev.accounts[a]:
                assert a in self.allowed, f"{a} changed in a step allowed to touch {self.allowed}"

    @always
    def settlement_keeps_no_more_than_rounding(self) -> None:
        """Once every position of a series has settled, the payoffs add up to at most zero (the
        protocol pays longs no more than it collects from shorts) and lose at most one wei per
        position."""
        g = self.ghost
        open_series = {sid for h in self.now.accounts.values() for sid, _ in h.positions}
        for sid, count in g.settled_count.items():
            if sid not in open_series:
                assert -count <= g.settled_payoff[sid] <= 0, (sid, g.settled_payoff[sid])

    @always
    def mirror_agrees_with_contract(self) -> None:
        """keeper/margin.py (float64) agrees with the contract on every health value the machine
        read: MtM, H_IM and H_MM within 1e-9 relative + 1e-6 USD.

        The reads of one market state are checked together (one vectorised mirror call) once
        the market has moved on, and the rest at teardown; a failure names the step."""
        self.flush_mirror(everything=False)

    def flush_mirror(self, everything: bool) -> None:
        queue = self._mirror_queue
        if not queue or (not everything and queue[-1].market is self._market_data()):
            return
        self._mirror_queue = []
        groups: dict[int, list[MirrorRead]] = {}
        for item in queue:
            groups.setdefault(id(item.market), []).append(item)
        for items in groups.values():
            result = mirror.evaluate([r.book for r in items], items[0].market)
            for i, r in enumerate(items):
                STATS["mirror_checks"] += 1
                for got, want, tag in (
                    (r.health.mtm, result.mtm[i], "MtM"),
                    (r.health.im, result.health_im[i], "H_IM"),
                    (r.health.mm, result.health_mm[i], "H_MM"),
                ):
                    assert got is None or mirror.close(got, float(want)), (
                        f"step {r.step}: {r.account} {tag} contract {got / WAD} "
                        f"mirror {float(want)}"
                    )

    # -- post-conditions (checked by the rules) ------------------------------------------------

    @postcondition
    def margin_rule_holds(self, account: str, before: Health | None) -> None:
        """After a fill, withdrawal or hedge swap that went through, the account meets initial
        margin (H_IM >= 0, with no stale vol entry among the expiries it holds), or the action
        reduced its risk: H_IM no lower and H_MM not pushed below min(H_MM before, 0)."""
        after = self.health(account)
        if after is None:
            mark("margin rule: oracle down")
            return
        assert after.im is not None and after.im <= after.mm, (account, after)
        if after.im >= 0 and not self.holds_stale_vol(account):
            return
        mark("margin rule: below IM or stale, risk-reducing")
        assert before is not None and before.im is not None, (account, before, after)
        # Expired positions settle into cash first (exact to a few wei of rounding).
        slack = 10**6
        assert after.im >= before.im - slack, (account, before, after)
        assert after.mm >= min(before.mm, 0) - slack, (account, before, after)

    @postcondition
    def healthy_stays_healthy(self, before: dict[str, Health | None]) -> None:
        """No non-price action moves an account from H_MM >= 0 to H_MM < 0 (accounts the step
        did not change keep their health trivially: the market did not move)."""
        for a, h in before.items():
            if h is None or h.mm < 0:
                continue
            after = self.health(a)
            assert after is not None and after.mm >= 0, (a, h, after)

    @postcondition
    def fill_conserves_cash(
        self, maker: str, taker: str, before: Snapshot, premium: int, settled: int
    ) -> None:
        """A fill moves the premium from one side to the other and nothing else: the two cash
        balances change by opposite amounts (apart from payoffs of expired positions settled
        first), and the premium is amount x price rounded up."""
        after = self.current()

        def cash(s: Snapshot, a: str) -> int:
            return s.cash(s.accounts[a])

        change = cash(after, maker) - cash(before, maker) + cash(after, taker) - cash(before, taker)
        indices = (after.share_price, after.borrow_index)
        slack = 0 if indices == (WAD, WAD) else 2 * (sum(indices) // WAD + 2)
        assert -slack - 2 <= change - settled <= 0, (change, settled, premium)

    @postcondition
    def refusal_is_justified(self, account: str, amount_wad: int) -> None:
        """A cash withdrawal refused for margin was beyond the limit: withdrawing x lowers every
        scenario value by x, so the engine may refuse only if H_IM < x."""
        h = self.health(account)
        assert h is None or h.im < amount_wad + 10**3, (account, h, amount_wad)

    def health_before(self, *accounts: str) -> dict[str, Health | None]:
        """MtM, H_IM and H_MM of the accounts an action is about to change (for the
        post-conditions)."""
        return {a: self.health(a) for a in dict.fromkeys(accounts)}


def properties(machine: type[KappaMachine] = KappaMachine) -> list[str]:
    """Names of every property a machine checks: its invariants and the post-conditions."""
    return [n for n in _INVARIANTS + _POSTCONDITIONS if hasattr(machine, n)]
