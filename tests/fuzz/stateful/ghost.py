"""The ghost model: what every account should hold, computed in Python from the actions alone.

It restates the engine's accounting rules (MarginEngine.vy, docs/margin_model.md) without reading
the engine's storage: cash is shares of a pool (credits mint shares rounded down, debits burn
them rounded up, a shortfall becomes debt), options are signed sizes per series, fills move a
premium rounded up for its payer, expired series settle at their intrinsic value (longs rounded
down, shorts rounded up). The machines apply each action that went through to the ghost and
compare it with the chain after every step, exactly.

Besides balances it keeps the books the invariants need: the ledger of USD and WETH that entered
and left the engine, the sizes and payoffs of settled positions per series, and a budget for the
rounding the protocol may keep (every rounding is in its favour, so the ledger may exceed the
accounts' claims by at most that budget, never fall below them).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from tests.deployment import WAD
from tests.fuzz.protocol_revm import USD_SCALE
from tests.fuzz.stateful.world import SeriesInfo


@dataclass
class Holdings:
    """One engine account: cash shares, cash debt (USD wad), underlying (wad) and positions as
    [series id, signed size] in the engine's storage order (append; removal swaps in the last)."""

    shares: int = 0
    debt: int = 0
    underlying: int = 0
    positions: list[list[int]] = field(default_factory=list)

    def sizes(self) -> dict[int, int]:
        return {sid: size for sid, size in self.positions}

    def copy(self) -> Holdings:
        return Holdings(self.shares, self.debt, self.underlying, [p[:] for p in self.positions])


@dataclass
class Ghost:
    accounts: dict[str, Holdings]
    series: dict[int, SeriesInfo]
    share_price: int = WAD
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

    def holdings(self, account: str) -> Holdings:
        return self.accounts.setdefault(account, Holdings())

    def cash(self, account: str) -> int:
        """Cash as the engine reports it: shares at the share price (rounded down) minus debt."""
        h = self.holdings(account)
        return h.shares * self.share_price // WAD - h.debt

    # -- the engine's accounting primitives ------------------------------------------------------

    def add_cash(self, account: str, amount: int) -> None:
        """Credit (repay debt, then mint shares rounded down) or debit (burn shares rounded up,
        the uncovered rest becomes debt), as MarginEngine._add_cash."""
        h = self.holdings(account)
        price = self.share_price
        if price != WAD:
            self.dust_budget += price // WAD + 2
        if amount >= 0:
            repaid = min(h.debt, amount)
            h.debt -= repaid
            h.shares += (amount - repaid) * WAD // price
            return
        debit = -amount
        needed = -(-debit * WAD // price)
        if needed <= h.shares:
            h.shares -= needed
            return
        covered = h.shares * price // WAD
        h.shares = 0
        h.debt += debit - covered

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
        """Token units in (USD 6 decimals, WETH 18)."""
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
        self.add_cash(maker, -cash)
        self.add_cash(taker, cash)
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
        for sid, size in [p[:] for p in self.holdings(account).positions]:
            moved = abs(size) * fraction // WAD * (1 if size > 0 else -1)
            if moved:
                self.add_position(account, sid, -moved)
                self.add_position(receiver, sid, moved)
        src, dst = self.holdings(account), self.holdings(receiver)
        underlying = src.underlying * fraction // WAD
        src.underlying -= underlying
        dst.underlying += underlying

    def move_cash(self, sender: str, receiver: str, amount: int) -> None:
        self.add_cash(sender, -amount)
        self.add_cash(receiver, amount)

    def socialize_loss(self, receiver: str, amount: int) -> int:
        """As MarginEngine.socialize_loss: lower the share price so that every other positive
        balance loses `amount` together (rounded against them, the price kept at 1 wei or
        more; the uncovered rest is a deficit), and credit the receiver `amount` plus what its
        own shares lost. Returns the new share price."""
        own = self.holdings(receiver).shares
        others = sum(h.shares for h in self.accounts.values()) - own
        cut = min(-(-amount * WAD // others), self.share_price - 1) if others else 0
        covered = min(amount, others * cut // WAD)
        self.share_price -= cut
        self.deficit += amount - covered
        # Holders lose up to one wei per WAD of shares to the price's rounding, and their
        # balances round down each.
        self.dust_budget += others // WAD + 2 + len(self.accounts)
        self.socialized += amount
        self.add_cash(receiver, amount + own * cut // WAD)
        return self.share_price
