"""The ghost model: what every account should hold, computed in Python from the actions alone.

It restates the engine's accounting rules (MarginEngine.vy, docs/margin_model.md) without reading
the engine's storage: cash is supply or borrow shares of a pool with interest (keeper/interest.py,
the engine's twin: credits repay debt then mint supply shares rounded down, debits burn supply
shares rounded up and borrow the rest, rounded up; the indices accrue at each action's block
time, read from `clock`), options are signed sizes per series, fills move a
premium rounded up for its payer, expired series settle at their intrinsic value (longs rounded
down, shorts rounded up), and the perp's fills, settlements and moves settle into cash by
keeper/perp.py's rules (the PerpBook's twin, fed the index price and time the book used). The
machines apply each action that went through to the ghost and compare it with the chain after
every step, exactly.

Besides balances it keeps the books the invariants need: the ledger of USD and WETH that entered
and left the engine, the sizes and payoffs of settled positions per series, and a budget for the
rounding the protocol may keep (every rounding is in its favour, so the ledger may exceed the
accounts' claims by at most that budget, never fall below them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from keeper import perp as kp
from keeper.interest import Pool
from tests.deployment import WAD
from tests.fuzz.protocol_revm import USD_SCALE
from tests.fuzz.stateful.world import SeriesInfo


@dataclass
class Holdings:
    """One engine account: supply shares, borrow shares, underlying (wad), positions as
    [series id, signed size] in the engine's storage order (append; removal swaps in the last)
    and its perp position (size, settled price, funding index then) as PerpBook stores it."""

    shares: int = 0
    debt: int = 0
    underlying: int = 0
    positions: list[list[int]] = field(default_factory=list)
    perp: tuple[int, int, int] = (0, 0, 0)

    def sizes(self) -> dict[int, int]:
        return {sid: size for sid, size in self.positions}

    def copy(self) -> Holdings:
        return Holdings(
            self.shares, self.debt, self.underlying, [p[:] for p in self.positions], self.perp
        )


@dataclass
class Ghost:
    accounts: dict[str, Holdings]
    series: dict[int, SeriesInfo]
    pool: Pool = field(default_factory=Pool)
    # The block time of the action being applied (the machine's chain clock).
    clock: Callable[[], int] = field(default=lambda: 0)
    settlement: dict[int, int] = field(default_factory=dict)  # expiry -> price
    # Net USD (wad) and WETH (wad) the engine received from outside: deposits and swap outputs
    # in, withdrawals and swap inputs out.
    usd_ledger: int = 0
    weth_ledger: int = 0
    # Rounding the protocol may have kept (wei): grows with every rounded operation.
    dust_budget: int = 0
    settled_size: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    settled_payoff: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    settled_count: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    # Losses socialized through the cash share price (USD wad), and the part of them beyond
    # every other positive balance (MarginEngine.deficit: credited cash nothing backs).
    socialized: int = 0
    deficit: int = 0
    # The perp book's twin (None: no perp), the sum of every perp cash amount settled into
    # accounts, and the number of settlements (each rounds down once).
    perps: kp.PerpBook | None = None
    perp_cash: int = 0
    perp_settlements: int = 0
    # Accounts the engine marks as ever having held the perp (MarginEngine's PERP_HOLDER):
    # both sides of a perp fill, and the receiver of a holder's liquidation move.
    perp_holders: set[str] = field(default_factory=set)

    def holdings(self, account: str) -> Holdings:
        return self.accounts.setdefault(account, Holdings())

    @property
    def share_price(self) -> int:
        """The supply index (the cash pool's share price)."""
        return self.pool.supply_index

    def cash(self, account: str) -> int:
        """Cash as the engine reports it, with interest accrued to now."""
        return self.pool.at(self.clock()).cash(account)

    # -- the engine's accounting primitives ------------------------------------------------------

    def add_cash(self, account: str, amount: int, flow: bool = True) -> None:
        """Credit or debit as MarginEngine._add_cash (keeper/interest.py Pool.add_cash);
        `flow` False for one side of a transfer between accounts."""
        self._dust()
        self.pool.add_cash(account, amount, self.clock(), flow)
        self._sync(account)

    def _dust(self) -> None:
        # Each rounded share conversion keeps at most an index's worth of wei per share unit.
        self.dust_budget += 2 + self.pool.supply_index // WAD + self.pool.borrow_index // WAD

    def _sync(self, account: str) -> None:
        h = self.holdings(account)
        h.shares = self.pool.shares.get(account, 0)
        h.debt = self.pool.debts.get(account, 0)

    def add_position(self, account: str, series_id: int, delta: int) -> None:
        positions = self.holdings(account).positions
        for i, (sid, size) in enumerate(positions):
            if sid == series_id:
                if size + delta == 0:
                    positions[i] = positions[-1]
                    positions.pop()
                else:
                    positions[i][1] = size + delta
                return
        positions.append([series_id, delta])

    def payoff(self, series_id: int, size: int) -> int:
        """A settled position's cash: size x intrinsic, rounded down (longs credited down,
        shorts debited up); None of the expiry is settled -> 0 is never asked."""
        s = self.series[series_id]
        price = self.settlement[s.expiry]
        intrinsic = max(price - s.strike, 0) if s.is_call else max(s.strike - price, 0)
        return size * intrinsic // WAD

    def settle_expired(self, account: str) -> int:
        """Turn the account's positions in settled expiries into cash; returns the payoffs."""
        h = self.holdings(account)
        kept, total = [], 0
        for sid, size in h.positions:
            if self.series[sid].expiry not in self.settlement:
                kept.append([sid, size])
                continue
            payoff = self.payoff(sid, size)
            self.add_cash(account, payoff)
            self.settled_size[sid] += size
            self.settled_payoff[sid] += payoff
            self.settled_count[sid] += 1
            self.dust_budget += 1
            total += payoff
        h.positions = kept
        return total

    # -- actions -----------------------------------------------------------------------------

    def deposit(self, account: str, usd: int = 0, weth: int = 0) -> None:
        """Token units in (USD 6 decimals, WETH 18). Only a cash deposit touches cash (and
        accrues interest)."""
        if usd:
            self.add_cash(account, usd * USD_SCALE)
            self.usd_ledger += usd * USD_SCALE
        self.holdings(account).underlying += weth
        self.weth_ledger += weth

    def withdraw(self, account: str, usd: int = 0, weth: int = 0) -> None:
        self.settle_expired(account)
        if usd:
            self.add_cash(account, -usd * USD_SCALE)
            self.usd_ledger -= usd * USD_SCALE
        self.holdings(account).underlying -= weth
        self.weth_ledger -= weth

    def fill(
        self, maker: str, taker: str, series_id: int, maker_is_buy: bool, amount: int, price: int
    ) -> int:
        """Apply a fill; returns the premium (rounded up for its payer, the same to its
        receiver)."""
        self.settle_expired(maker)
        self.settle_expired(taker)
        premium = -(-amount * price // WAD)
        delta, cash = (amount, premium) if maker_is_buy else (-amount, -premium)
        self.add_position(maker, series_id, delta)
        self.add_position(taker, series_id, -delta)
        self.add_cash(maker, -cash, False)
        self.add_cash(taker, cash, False)
        return premium

    def swap(self, account: str, to_underlying: bool, amount_in: int, amount_out: int) -> None:
        """A hedge swap of token units: USD -> WETH when to_underlying, else WETH -> USD."""
        if to_underlying:
            self.add_cash(account, -amount_in * USD_SCALE)
            self.usd_ledger -= amount_in * USD_SCALE
            self.holdings(account).underlying += amount_out
            self.weth_ledger += amount_out
        else:
            self.holdings(account).underlying -= amount_in
            self.weth_ledger -= amount_in
            self.add_cash(account, amount_out * USD_SCALE)
            self.usd_ledger += amount_out * USD_SCALE

    # -- liquidation (the engine's hooks, as the Liquidator calls them) -----------------------

    def move_portfolio(self, account: str, receiver: str, fraction: int) -> None:
        """MarginEngine.move_portfolio: settle both, then move `fraction` of every position
        (rounded toward zero) and of the underlying (rounded down); the cash side of a bid is
        a separate move_cash."""
        self.settle_expired(account)
        self.settle_expired(receiver)
        # The engine accrues interest before the perp's move of an account that ever held the
        # perp (logged before PerpMoved), and marks the receiver as a holder.
        if account in self.perp_holders:
            self.pool.accrue(self.clock())
            self.perp_holders.add(receiver)
        for sid, size in [p[:] for p in self.holdings(account).positions]:
            moved = abs(size) * fraction // WAD * (1 if size > 0 else -1)
            if moved:
                self.add_position(account, sid, -moved)
                self.add_position(receiver, sid, moved)
        src, dst = self.holdings(account), self.holdings(receiver)
        underlying = src.underlying * fraction // WAD
        src.underlying -= underlying
        dst.underlying += underlying

    # -- the perp (PerpBook's events, as the engine applies their cash) ---------------------

    def perp_event(self, name: str, args: dict[str, object], account_of: dict[str, str]) -> None:
        """Apply one PerpBook event: the twin replays it (raising if the event's cash is not
        the rules'), and the engine credits each side's cash in the order it does (buyer then
        seller, source then target) as a flow (the other side settles at another time)."""
        assert self.perps is not None
        self.perps.apply(name, args)
        if name == "PerpFill":
            sides = (("buyer", "buyer_cash"), ("seller", "seller_cash"))
        elif name == "PerpSettled":
            sides = (("account", "cash"),)
        elif name == "PerpMoved":
            sides = (("source", "source_cash"), ("target", "target_cash"))
        else:
            return
        for who, amount in sides:
            account = account_of[str(args[who]).lower()]
            if name == "PerpFill":
                self.perp_holders.add(account)
            cash = int(args[amount])  # type: ignore[call-overload]
            # settle_perp credits nothing for a zero settlement; fills and moves touch both
            # sides' cash whatever the amount.
            if cash != 0 or name != "PerpSettled":
                self.add_cash(account, cash)
            self.perp_cash += cash
            self.perp_settlements += 1
            self.dust_budget += 1
            p = self.perps.positions.get(str(args[who]), kp.Position())
            self.holdings(account).perp = (p.size, p.price, p.index)

    def perp_unsettled(self) -> int:
        """The perps' value not yet settled into cash, summed over accounts, exactly as a
        fraction's floor: sum q (S - P) - q (F - F0) = sum q (F0 - P) while longs and shorts
        net to zero, whatever S and F are now."""
        if self.perps is None:
            return 0
        total = sum(p.size * (p.index - p.price) for p in self.perps.positions.values())
        return total // WAD

    def move_cash(self, sender: str, receiver: str, amount: int) -> None:
        self.add_cash(sender, -amount, False)
        self.add_cash(receiver, amount, False)

    def socialize_loss(self, receiver: str, amount: int) -> int:
        """As MarginEngine.socialize_loss (keeper/interest.py Pool.socialize): lower the supply
        index so that every other positive balance loses `amount` together (rounded against
        them, the index kept at its floor or above; the uncovered rest is a deficit), and
        credit the receiver `amount` plus what its own shares lost. Returns the new index."""
        others = self.pool.total_supply_shares - self.pool.shares.get(receiver, 0)
        before = self.pool.deficit
        self._dust()
        index = self.pool.socialize(receiver, amount, self.clock())
        self.deficit += self.pool.deficit - before
        # Holders lose up to one wei per WAD of shares to the index's rounding, and their
        # balances round down each.
        self.dust_budget += others // WAD + 2 + len(self.accounts)
        self.socialized += amount
        self._sync(receiver)
        return index

    def collect_reserve(self, fund: str) -> int:
        """MarginEngine.collect_reserve: the reserve paid into the fund's cash."""
        self._dust()
        amount = self.pool.collect_reserve(fund, self.clock())
        self._sync(fund)
        return amount
