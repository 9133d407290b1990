"""Rule mixins for the machines built on KappaMachine: each group of protocol actions as `@step`s.

A machine is `class M(SomeRules, OtherRules, KappaMachine)`. Every rule:
- draws its inputs (actors by index: traders 0..TRADERS-1; the operator acts for traders 0 and 1
  unless a rule revoked it; the outsider has no rights),
- says which accounts it may change (`self.allow`),
- runs the call through `self.attempt`, which accepts only the revert reasons listed for it,
- on success applies the action to the ghost model and checks its post-conditions.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from keeper.liquidation import NO_WITNESS
from keeper.orders import as_tuple
from keeper.series import PERP_ID
from tests import deployment
from tests.deployment import DAY, GRID, WAD, expiry_at
from tests.fuzz.protocol_revm import USD_SCALE
from tests.fuzz.stateful.base import (
    ORACLE_DOWN,
    STATS,
    KappaMachine,
    always,
    mark,
    postcondition,
    step,
)
from tests.fuzz.stateful.world import TRADERS, list_expiry
from tests.strategies import order_fields

trader = st.integers(0, TRADERS - 1)
ORDER = order_fields(TRADERS)
MARGIN = frozenset({"engine: below initial margin"})
# A withdrawal or swap that borrows must leave utilization within the cap.
BORROW = frozenset({"engine: utilization cap"})
# While an expiry an account holds has a stale vol entry it cannot withdraw.
STALE = frozenset({"engine: stale vol"})
# Fills by an operator, or that leave a side below initial margin, are held to the fair-price
# band (MarginEngine._require_fair_price).
BAND = frozenset({"engine: price outside band"})
GRACE = frozenset({"engine: sequencer grace"})
PAUSED = frozenset({"engine: paused"})
ORDER_STATE = frozenset({"orders: overfill", "orders: expired", "orders: cancelled"})
SWAP_REASONS = frozenset(
    {
        "engine: swap loss too large",
        "engine: hedge budget exceeded",
        "engine: insufficient underlying",
        "pool: zero output",
        "erc20: insufficient balance",
    }
)
MAX_LIVE_EXPIRIES = 4


class CollateralRules(KappaMachine):
    """Deposits, withdrawals, round trips and the exit check."""

    @step(who=trader, usd=st.integers(0, 100_000), weth=st.integers(0, 20), for_other=st.booleans())
    def deposit(self, who: int, usd: int, weth: int, for_other: bool) -> None:
        """Deposit USD and/or WETH (for oneself, or the outsider pays into a trader's account)."""
        account = self.traders[who].address
        payer = self.w.outsider if for_other else account
        self.allow(account)
        before = self.health_before(account) if self.has_positions(account) else {}
        for token, amount in ((self.p.usd, usd * 10**6), (self.p.weth, weth * WAD // 4)):
            if amount == 0:
                continue
            if for_other:
                ok, _ = self.attempt(
                    "deposit_for",
                    self.engine.deposit_for,
                    account,
                    token.address,
                    amount,
                    sender=payer,
                )
            else:
                ok, _ = self.attempt(
                    "deposit", self.engine.deposit, token.address, amount, sender=payer
                )
            assert ok, "a deposit is always allowed"
            if token is self.p.usd:
                self.ghost.deposit(account, usd=amount)
            else:
                self.ghost.deposit(account, weth=amount)
        self.healthy_stays_healthy(before)

    @step(who=trader, cash=st.booleans(), percent=st.integers(1, 120))
    def withdraw(self, who: int, cash: bool, percent: int) -> None:
        """Withdraw a percentage of the cash or underlying balance (above 100: more than
        held)."""
        account = self.traders[who].address
        if cash:
            token, amount = self.p.usd, max(self.cash(account), 0) * percent // 100 // USD_SCALE
        else:
            token = self.p.weth
            amount = self.current().accounts[account].underlying * percent // 100
        if amount == 0:
            mark("withdraw: nothing")
            return
        self.allow(account)
        positions = self.has_positions(account)
        before = self.health_before(account) if positions or cash else {}
        reasons = MARGIN | BORROW | ORACLE_DOWN | {"engine: insufficient underlying"}
        if positions:
            reasons |= GRACE | STALE
        debt_before = self.current().accounts[account].debt
        ok, reason = self.attempt(
            "withdraw",
            self.engine.withdraw,
            token.address,
            amount,
            account,
            sender=account,
            allowed=reasons,
        )
        if not ok:
            if reason == "engine: below initial margin" and cash:
                self.refusal_is_justified(account, amount * USD_SCALE)
            return
        if cash:
            self.ghost.withdraw(account, usd=amount)
            self.utilization_within_cap(account, debt_before)
        else:
            self.ghost.withdraw(account, weth=amount)
        self.margin_rule_holds(account, before.get(account))
        self.healthy_stays_healthy(before)

    @step(who=st.integers(0, TRADERS), usd=st.integers(1, 50_000))
    def round_trip(self, who: int, usd: int) -> None:
        """Deposit then withdraw the same USD (who == TRADERS: the outsider, a fresh account)."""
        account = self.w.outsider if who == TRADERS else self.traders[who].address
        self.allow(account)
        self.round_trip_gains_nothing(account, usd * 10**6)

    @step(who=st.integers(0, TRADERS))
    def exit(self, who: int) -> None:
        """Check that the account could leave now (in a snapshot: nothing is kept)."""
        account = self.w.outsider if who == TRADERS else self.traders[who].address
        self.exit_always_possible(account)

    @postcondition
    def round_trip_gains_nothing(self, account: str, amount: int) -> None:
        """Depositing then withdrawing the same amount returns exactly the deposit and leaves
        the account's cash where it was (plus the payoffs of expired positions the withdrawal
        settles first); a fresh account (no cash, positions or underlying: nothing that could
        back a debt) cannot take out one unit more."""
        wallet = self.p.usd.balanceOf(account)
        cash_before = self.cash(account)
        fresh = (
            cash_before == 0
            and not self.has_positions(account)
            and self.current().accounts[account].underlying == 0
        )
        ok, _ = self.attempt(
            "round trip: deposit", self.engine.deposit, self.p.usd.address, amount, sender=account
        )
        assert ok
        self.ghost.deposit(account, usd=amount)
        if fresh:
            ok, _ = self.attempt(
                "round trip: one unit more",
                self.engine.withdraw,
                self.p.usd.address,
                amount + 1,
                account,
                sender=account,
                allowed=MARGIN | ORACLE_DOWN,
            )
            assert not ok, "a fresh account took out more than it put in"
        reasons = MARGIN | GRACE | ORACLE_DOWN | STALE
        ok, _ = self.attempt(
            "round trip: withdraw",
            self.engine.withdraw,
            self.p.usd.address,
            amount,
            account,
            sender=account,
            allowed=reasons,
        )
        if not ok:
            return
        # The withdrawal first settles expired positions: their payoffs are the only gain.
        settled = sum(e.payoff for e in self.engine.get_logs() if e.name == "PositionSettled")
        self.ghost.withdraw(account, usd=amount)
        assert self.p.usd.balanceOf(account) == wallet
        assert self.cash(account) <= cash_before + settled, (self.cash(account), cash_before)

    @postcondition
    def exit_always_possible(self, account: str) -> None:
        """A user can always leave: with no positions (options or perp) and no debt,
        withdrawing every unit of cash and underlying succeeds (paused, oracle down or
        sequencer down alike); with
        positions, withdrawing cash up to H_IM succeeds while the oracle and sequencer allow
        and the vol entries of the expiries it holds are fresh."""
        cash = self.cash(account)
        snap = self.chain.snapshot()
        try:
            if not self.has_positions(account):
                s = self.current().accounts[account]
                if cash < 0:
                    mark("exit: debt without positions")
                    return
                if cash >= USD_SCALE:
                    self.send(
                        self.engine.withdraw,
                        self.p.usd.address,
                        cash // USD_SCALE,
                        account,
                        sender=account,
                    )
                if s.underlying:
                    self.send(
                        self.engine.withdraw,
                        self.p.weth.address,
                        s.underlying,
                        account,
                        sender=account,
                    )
                mark("exit: withdrew everything")
                return
            h = self.health(account)
            if h is None or not self.p.oracle.risk_increase_allowed():
                mark("exit: oracle or sequencer down")
                return
            if self.holds_stale_vol(account):
                mark("exit: a held expiry's vol is stale")
                return
            amount = (min(h.im, cash) - 10**3) // USD_SCALE
            if amount <= 0:
                mark("exit: nothing above the margin limit")
                return
            self.send(self.engine.withdraw, self.p.usd.address, amount, account, sender=account)
            mark("exit: withdrew to the margin limit")
        finally:
            self.chain.revert(snap, reuse=False)
            self.dirty = True
            self.current()


class TradingRules(KappaMachine):
    """Signed-order fills: new orders, in full or in part, by the taker or its operator, and
    what is left of earlier ones."""

    def live_series(self) -> list[int]:
        now = self.chain.timestamp
        return sorted(sid for sid, s in self.series.items() if s.expiry > now)

    @step(**ORDER)
    def fill(self, maker: int, taker: int, pick: int, buy: bool, size: int, price: int) -> None:
        """A taker fills a new signed order of a maker, in full."""
        taker = (maker + taker) % TRADERS
        self.do_fill(maker, taker, pick, buy, size, price, False, 1, False)

    @step(**ORDER, part=st.sampled_from([2, 3]))
    def fill_part(
        self, maker: int, taker: int, pick: int, buy: bool, size: int, price: int, part: int
    ) -> None:
        """A taker fills part of a new signed order (the rest stays open)."""
        taker = (maker + taker) % TRADERS
        self.do_fill(maker, taker, pick, buy, size, price, False, part, False)

    @step(**ORDER)
    def fill_via_operator(
        self, maker: int, taker: int, pick: int, buy: bool, size: int, price: int
    ) -> None:
        """The operator fills a new order for a taker (allowed for traders 0 and 1 only)."""
        taker = (maker + taker) % TRADERS
        self.do_fill(maker, taker, pick, buy, size, price, True, 1, False)

    @step(taker=trader, pick=st.integers(0, 7), part=st.sampled_from([1, 2]))
    def fill_earlier(self, taker: int, pick: int, part: int) -> None:
        """A taker fills (part of) what is left of one of the last orders: overfills,
        cancelled and expired orders must revert."""
        self.do_fill(0, taker, pick, True, 1, 1, False, part, True)

    def do_fill(
        self,
        maker: int,
        taker: int,
        pick: int,
        maker_buys: bool,
        size: int,
        price: int,
        via_operator: bool,
        part: int,
        reuse: bool,
    ) -> None:
        """Fill a maker's new signed order (or what is left of an earlier one, `reuse`) for a
        taker, sent by the taker or by the operator; then check the fill's post-conditions."""
        if reuse and self.orders:
            order, signature = self.orders[pick % len(self.orders)]
            mark("fill: earlier order")
        else:
            live = self.live_series()
            if not live:
                mark("fill: no live series")
                return
            self.nonce += 1
            m = self.traders[maker]
            order = m.order(
                live[pick % len(live)],
                maker_buys,
                size * WAD // 10,
                price * WAD,
                self.nonce,
                self.chain.timestamp + DAY,
            )
            signature = m.sign(self.p, order)
            self.orders = [*self.orders, (order, signature)][-8:]
        maker_address = order["maker"]
        taker_address = self.traders[taker].address
        sender = self.w.operator if via_operator else taker_address
        amount = max(order["size"] // part, 1)
        if sender != taker_address and not self.operator_of[taker_address]:
            self.expect_revert("engine: not authorised", order, signature, amount, taker)
            return
        if self.paused:
            self.expect_revert("engine: paused", order, signature, amount, taker)
            return
        if maker_address == taker_address:
            checked_first = GRACE | {"engine: series expired"}
            self.expect_revert("engine: self trade", order, signature, amount, taker, checked_first)
            return
        before = self.health_before(maker_address, taker_address)
        snapshot = self.current()
        self.allow(maker_address, taker_address)
        reasons = MARGIN | GRACE | ORACLE_DOWN | ORDER_STATE | BAND
        reasons |= {"engine: too many positions", "engine: series expired"}
        ok = self.attempt_fill(order, signature, amount, taker_address, sender, reasons)
        if not ok:
            return
        logs = self.engine.get_logs()
        fills = [e for e in logs if e.name == "Fill"]
        settled = sum(e.payoff for e in logs if e.name == "PositionSettled")
        assert len(fills) == 1 and fills[0].amount == amount
        premium = self.ghost.fill(
            maker_address,
            taker_address,
            order["series_id"],
            order["is_buy"],
            amount,
            order["price"],
        )
        assert fills[0].premium == premium
        n = len(self.current().accounts[taker_address].positions)
        mark(f"fill: taker holds {n} positions")
        STATS["fills"] += 1
        STATS["max_positions"] = max(STATS["max_positions"], n)
        self.fill_conserves_cash(maker_address, taker_address, snapshot, premium, settled)
        self.margin_rule_holds(maker_address, before[maker_address])
        self.margin_rule_holds(taker_address, before[taker_address])
        self.healthy_stays_healthy(before)

    def expect_revert(
        self,
        reason: str,
        order: dict[str, Any],
        signature: bytes,
        amount: int,
        taker: int,
        earlier: frozenset[str] = frozenset(),
    ) -> None:
        """The fill must revert with `reason`, or one the engine checks before it."""
        taker_address = self.traders[taker].address
        sender = self.w.operator if reason == "engine: not authorised" else taker_address
        ok = self.attempt_fill(order, signature, amount, taker_address, sender, {reason} | earlier)
        assert not ok, f"fill: expected {reason!r}"

    def attempt_fill(
        self,
        order: dict[str, Any],
        signature: bytes,
        amount: int,
        taker: str,
        sender: str,
        allowed: frozenset[str] | set[str],
    ) -> bool:
        """Send the fill; True if it went through (else it reverted with a reason allowed)."""
        ok, _ = self.attempt(
            "fill",
            self.engine.fill,
            as_tuple(order),
            signature,
            amount,
            taker,
            sender=sender,
            allowed=allowed,
        )
        return ok


PERP_BAND = frozenset({"engine: perp price outside band"})
AUTH = frozenset({"engine: not authorised"})


class PerpRules(KappaMachine):
    """The perp through the engine: fills of signed perp orders at prices inside and outside
    the band (by the taker or its operator), and `settle_perp` of any account by anyone."""

    @step(
        maker=trader,
        taker=st.integers(1, TRADERS - 1),
        buy=st.booleans(),
        size=st.integers(1, 400),
        offset_bp=st.sampled_from([-250, -200, -120, -30, 0, 0, 15, 90, 200, 201, 300]),
        via_operator=st.booleans(),
    )
    def perp_fill(
        self, maker: int, taker: int, buy: bool, size: int, offset_bp: int, via_operator: bool
    ) -> None:
        """A taker fills a maker's new perp order of size/10 units at the index plus
        `offset_bp` basis points (the band is 200: beyond it the fill must revert)."""
        taker = (maker + taker) % TRADERS
        market = self.market()
        if market is None:
            mark("perp fill: oracle down")
            return
        self.nonce += 1
        m = self.traders[maker]
        # Rounded toward the index, so that |X - S| = floor(S |offset| / 1e4): at +-200 bp the
        # price sits exactly on the band's edge, floor(band S), whatever S is.
        move = market.spot * abs(offset_bp) // 10_000
        price = market.spot + (move if offset_bp >= 0 else -move)
        order = m.order(
            PERP_ID, buy, size * WAD // 10, price, self.nonce, self.chain.timestamp + DAY
        )
        signature = m.sign(self.p, order)
        taker_address = self.traders[taker].address
        sender = self.w.operator if via_operator else taker_address
        if sender != taker_address and not self.operator_of[taker_address]:
            ok, _ = self.attempt_perp_fill(order, signature, taker_address, sender, AUTH)
            assert not ok
            return
        before = self.health_before(m.address, taker_address)
        self.allow(m.address, taker_address)
        reasons = MARGIN | GRACE | PAUSED | PERP_BAND
        ok, reason = self.attempt_perp_fill(order, signature, taker_address, sender, reasons)
        if abs(offset_bp) > 200:
            assert not ok, "a perp fill outside the band went through"
        if not ok:
            assert abs(offset_bp) > 200 or reason != "engine: perp price outside band", reason
            return
        self.apply_perp_tx((m.address, taker_address))
        STATS["perp_fills"] += 1
        self.margin_rule_holds(m.address, before[m.address])
        self.margin_rule_holds(taker_address, before[taker_address])
        self.healthy_stays_healthy(before)

    def attempt_perp_fill(
        self,
        order: dict[str, Any],
        signature: bytes,
        taker: str,
        sender: str,
        allowed: frozenset[str] | set[str],
    ) -> tuple[bool, Any]:
        return self.attempt(
            "perp fill",
            self.engine.fill,
            as_tuple(order),
            signature,
            order["size"],
            taker,
            sender=sender,
            allowed=allowed,
        )

    def apply_perp_tx(self, touched: tuple[str, ...]) -> None:
        """Apply the last transaction to the ghost: expired positions of the touched accounts
        settle first, then the perp book's events in their order."""
        logs = self.chain.decode_logs_of(self.engine, self.p.perp_book)
        for account in touched:
            self.ghost.settle_expired(account)
        for e in logs:
            if e.name.startswith("Perp"):
                self.ghost.perp_event(e.name, e.args, self.account_of)

    @step(who=st.integers(0, TRADERS), caller=st.integers(0, TRADERS))
    def settle_perp(self, who: int, caller: int) -> None:
        """Anyone settles any account's perp into its cash: its margin never falls."""
        account = self.accounts[who]
        sender = self.accounts[caller]
        before = self.health_before(account)
        self.allow(account)
        ok, _ = self.attempt(
            "settle perp", self.engine.settle_perp, account, sender=sender, allowed=ORACLE_DOWN
        )
        if not ok:
            return
        events = [e for e in self.chain.decode_logs_of(self.p.perp_book) if e.name == "PerpSettled"]
        # The engine accrues interest first, position or not.
        self.ghost.pool.accrue(self.chain.timestamp)
        mark(f"settle perp: {'settled' if events else 'no position'}")
        for e in events:
            self.ghost.perp_event(e.name, e.args, self.account_of)
        self.settling_keeps_margin(account, before[account])

    @postcondition
    def settling_keeps_margin(self, account: str, before: Any) -> None:
        """Settling a perp moves its value into cash and changes the account's MtM and health
        only by rounding: the model counts the price PnL rounded down and the funding rounded
        up (the settlement gains up to two wei on them), and the credit or debit converts to
        cash shares rounded for the pool."""
        after = self.health(account)
        if before is None or after is None:
            return
        s = self.current()
        shares = 2 * (s.share_price // WAD + s.borrow_index // WAD + 2)
        assert -shares <= after.mtm - before.mtm <= 2, (account, before, after)
        assert after.mm >= before.mm - shares, (account, before, after)


class OrderRules(TradingRules):
    """Fills plus cancels, operator changes and intruders."""

    @step(pick=st.integers(0, 7))
    def cancel(self, pick: int) -> None:
        """The maker cancels one of its recent orders; later fills of it must revert."""
        if not self.orders:
            return
        order, _ = self.orders[pick % len(self.orders)]
        ok, _ = self.attempt(
            "cancel", self.p.order_book.cancel, as_tuple(order), sender=order["maker"]
        )
        assert ok

    @step(who=trader, allowed=st.booleans())
    def set_operator(self, who: int, allowed: bool) -> None:
        """A trader allows or revokes the operator."""
        account = self.traders[who].address
        ok, _ = self.attempt(
            "set_operator", self.engine.set_operator, self.w.operator, allowed, sender=account
        )
        assert ok
        self.operator_of[account] = allowed

    @step(victim=trader, action=st.sampled_from(["fill", "swap", "move", "admin"]))
    def intruder(self, victim: int, action: str) -> None:
        """The outsider tries to act on a trader's account or take a role: always refused."""
        account = self.traders[victim].address
        outsider = self.w.outsider
        if action == "fill" and self.orders:
            order, signature = self.orders[-1]
            if order["maker"] != account:
                self.unauthorised_call_reverts(
                    "engine: not authorised",
                    self.engine.fill,
                    as_tuple(order),
                    signature,
                    1,
                    account,
                )
        elif action == "swap":
            assert self.p.pools
            self.unauthorised_call_reverts(
                "engine: not authorised",
                self.engine.swap,
                account,
                self.p.usd.address,
                [self.p.pools[0].address],
                [10**6],
                0,
                self.chain.timestamp,
            )
        elif action == "move":
            self.unauthorised_call_reverts(
                "engine: not liquidator", self.engine.move_portfolio, account, outsider, WAD
            )
            self.unauthorised_call_reverts(
                "engine: not liquidator", self.engine.move_cash, account, outsider, 1
            )
            self.unauthorised_call_reverts(
                "engine: not liquidator", self.engine.socialize_loss, outsider, 1
            )
        else:
            self.unauthorised_call_reverts("engine: not guardian", self.engine.set_paused, True)
            self.unauthorised_call_reverts(
                "ownable: not owner", self.engine.set_role, "liquidator", outsider
            )

    @postcondition
    def unauthorised_call_reverts(self, reason: str, fn: object, *args: object) -> None:
        """A call by someone without the right reverts with the authorisation reason (and, by
        only_authorised_accounts_change, leaves every account as it was)."""
        ok, got = self.attempt(
            f"intruder {reason}", fn, *args, sender=self.w.outsider, allowed={reason}
        )
        assert not ok and got == reason


class HedgeRules(KappaMachine):
    """Hedge swaps through the engine, and third-party trades that move the pools."""

    @step(
        who=trader,
        to_underlying=st.booleans(),
        size=st.integers(1, 100),
        legs=st.integers(1, 3),
        via_operator=st.booleans(),
    )
    def hedge(
        self, who: int, to_underlying: bool, size: int, legs: int, via_operator: bool
    ) -> None:
        """Swap an account's cash for WETH or back through the Router, split over `legs`
        pools (by the account or its operator)."""
        account = self.traders[who].address
        sender = self.w.operator if via_operator else account
        if to_underlying:
            token, total = self.p.usd, size * 500 * 10**6
        else:
            token, total = self.p.weth, size * WAD // 10
        pools = list(self.p.pools[:legs])
        amounts = [total // legs] * legs
        args = (
            account,
            token.address,
            [p.address for p in pools],
            amounts,
            0,
            self.chain.timestamp,
        )
        if sender != account and not self.operator_of[account]:
            denied = "engine: not authorised"
            ok, got = self.attempt(
                "hedge", self.engine.swap, *args, sender=sender, allowed={denied}
            )
            assert got == denied
            return
        if self.paused:
            ok, got = self.attempt("hedge", self.engine.swap, *args, sender=sender, allowed=PAUSED)
            assert got == "engine: paused"
            return
        before = self.health_before(account)
        self.allow(account)
        debt_before = self.current().accounts[account].debt
        ok, out = self.attempt(
            "hedge",
            self.engine.swap,
            *args,
            sender=sender,
            allowed=SWAP_REASONS | MARGIN | BORROW | GRACE | ORACLE_DOWN,
        )
        if not ok:
            return
        self.ghost.swap(account, to_underlying, sum(amounts), out)
        self.utilization_within_cap(account, debt_before)
        self.margin_rule_holds(account, before[account])
        self.healthy_stays_healthy(before)

    @step(pool=st.integers(0, 2), buy_weth=st.booleans(), size=st.integers(1, 100))
    def pool_trade(self, pool: int, buy_weth: bool, size: int) -> None:
        """The outsider trades on a pool directly (moves its price; no engine account
        changes)."""
        assert self.p.router is not None
        token_in, token_out = (self.p.usd, self.p.weth) if buy_weth else (self.p.weth, self.p.usd)
        amount = size * 1000 * 10**6 if buy_weth else size * WAD // 5
        self.attempt(
            "pool trade",
            self.p.router.swap_split,
            token_in.address,
            token_out.address,
            [self.p.pools[pool].address],
            [amount],
            0,
            self.w.outsider,
            self.chain.timestamp,
            sender=self.w.outsider,
        )

    @step()
    def arbitrage(self) -> None:
        """The outsider trades every pool back to the oracle price (as arbitrageurs would)."""
        assert self.p.router is not None
        spot = self.spot / WAD
        for pool in self.p.pools:
            r0, r1, _ = pool.get_reserves()  # WETH (wad), USD (6 decimals)
            weth, usd = r0 / WAD, r1 / 10**6
            target = math.sqrt(weth * usd / spot)  # WETH reserve at the oracle price
            if target < weth * 0.999:  # the pool is cheap: buy WETH with USD
                token_in, token_out = self.p.usd, self.p.weth
                amount = int((weth * usd / target - usd) * 10**6)
            elif target > weth * 1.001:
                token_in, token_out = self.p.weth, self.p.usd
                amount = int((target - weth) * WAD)
            else:
                continue
            self.attempt(
                "arbitrage",
                self.p.router.swap_split,
                token_in.address,
                token_out.address,
                [pool.address],
                [amount],
                0,
                self.w.outsider,
                self.chain.timestamp,
                sender=self.w.outsider,
                allowed={"pool: zero output"},
            )


class TimeRules(KappaMachine):
    """Time passing (with or without fresh prices)."""

    def publish(self, spot: int) -> None:
        """Every feed publishes `spot` (wad) as a fresh round."""
        self.spot = max(spot, WAD)
        for feed, decimals in zip(self.p.feeds, (8, 18, 6), strict=True):
            self.send(feed.set_answer, self.spot // 10 ** (18 - decimals), sender=self.p.admin)

    @step(
        market=True,
        seconds=st.sampled_from([60, 900, 3600, 4 * 3600, DAY, 3 * DAY]),
        refresh=st.sampled_from([True, True, True, False]),
    )
    def time_passes(self, seconds: int, refresh: bool) -> None:
        """Time moves on; the feeds publish again unless `refresh` is off (then they may go
        stale). Publishing feeds, like healthy ones publishing every heartbeat, also publish
        a minute after each expiry the jump crosses: the rounds settlement is fixed by."""
        end = self.chain.timestamp + seconds
        if refresh:
            for expiry in sorted(e for e in self.live if self.chain.timestamp < e < end - 60):
                self.chain.time_travel(seconds=expiry + 60 - self.chain.timestamp)
                self.publish(self.spot)
        self.chain.time_travel(seconds=end - self.chain.timestamp)
        self.market_moved()
        if refresh:
            self.publish(self.spot)


class MarketRules(TimeRules):
    """Oracle moves (drifts, crashes, a diverging or stale source) and vol moves."""

    @step(market=True, move=st.integers(-200, 200))
    def price_move(self, move: int) -> None:
        """Every feed publishes the spot moved by move/1000 (up to +-20%)."""
        self.publish(self.spot * (1000 + move) // 1000)

    @step(market=True, factor=st.sampled_from([40, 50, 70, 140, 200]))
    def crash(self, factor: int) -> None:
        """A crash or a spike: the spot jumps to factor% of itself."""
        mark(f"crash to {factor}%")
        self.publish(self.spot * factor // 100)

    @step(market=True, source=st.integers(0, 2), move=st.integers(-300, 300))
    def source_diverges(self, source: int, move: int) -> None:
        """One source publishes a different price (the median and the confidence move)."""
        feed = self.p.feeds[source]
        decimals = (8, 18, 6)[source]
        answer = self.spot * (1000 + move) // 1000 // 10 ** (18 - decimals)
        self.send(feed.set_answer, max(answer, 1), sender=self.p.admin)

    @step(market=True, source=st.integers(0, 2), age=st.sampled_from([3601, 7200, DAY]))
    def source_goes_stale(self, source: int, age: int) -> None:
        """One source's latest round is older than its heartbeat (it is skipped; with
        min_sources 3 of 3 sources that leaves the oracle without a price)."""
        feed = self.p.feeds[source]
        round_id, answer, _, _, _ = feed.latestRoundData()
        at = max(self.chain.timestamp - age, 1)
        self.send(
            feed.set_round_data, round_id + 1, answer, at, at, round_id + 1, sender=self.p.admin
        )

    @step(market=True, pick=st.integers(0, 15), atm=st.integers(-40, 40), skew=st.integers(-3, 3))
    def vol_move(self, pick: int, atm: int, skew: int) -> None:
        """The feeder pushes a new ATM vol (moved by atm/100) and skew for a live expiry."""
        live = sorted({s.expiry for s in self.series.values() if s.expiry > self.chain.timestamp})
        if not live:
            return
        expiry = live[pick % len(live)]
        current = self.p.vol.entry(expiry)[0]
        new = min(max(current + atm * WAD // 100, WAD // 10), 2 * WAD)
        ok, _ = self.attempt(
            "vol move", self.p.vol.update, expiry, new, skew * WAD // 10, sender=self.p.admin
        )
        assert ok


class SettlementRules(KappaMachine):
    """Expiry settlement, position settlement and the listing of new expiries."""

    @step(market=True)
    def settle_expiry(self) -> None:
        """Anyone records the settlement price of the oldest expired, unsettled expiry that
        can be settled (an expiry whose sources published no round within the settlement
        timeout after it never can, and must not keep the later ones waiting)."""
        now = self.chain.timestamp
        due = sorted(e for e in self.live if e <= now)
        if not due:
            mark("settle_expiry: none due")
            return
        for expiry in due:
            ok, _ = self.attempt(
                "settle_expiry",
                self.engine.settle_expiry,
                expiry,
                deployment.settlement_hints(self.p.oracle, self.p.feeds, expiry),
                sender=self.w.outsider,
                allowed={
                    "oracle: settlement source pending",
                    "oracle: too few settlement sources",
                },
            )
            if ok:
                (settled,) = [e for e in self.engine.get_logs() if e.name == "ExpirySettled"]
                assert settled.expiry == expiry and settled.price > 0
                self.ghost.settlement[expiry] = settled.price
                self.live.remove(expiry)
                return

    @step(who=trader)
    def settle_positions(self, who: int) -> None:
        """Anyone settles an account's expired positions into cash (value-neutral)."""
        account = self.traders[who].address
        before = self.health_before(account) if self.has_positions(account) else {}
        self.allow(account)
        ok, _ = self.attempt(
            "settle_positions", self.engine.settle_positions, account, sender=self.w.outsider
        )
        assert ok
        paid = sum(e.payoff for e in self.engine.get_logs() if e.name == "PositionSettled")
        assert self.ghost.settle_expired(account) == paid
        if paid or before:
            mark("settle_positions: settled some")
        self.healthy_stays_healthy(before)

    @step(market=True, days=st.integers(1, 14))
    def list_new_expiry(self, days: int) -> None:
        """The risk admin lists a new expiry (vol entry first) around the current spot."""
        now = self.chain.timestamp
        expiry = expiry_at(now, days)
        live = {s.expiry for s in self.series.values() if s.expiry > now}
        if len(live) >= MAX_LIVE_EXPIRIES or expiry in live or expiry < now + 3600:
            return
        if self.p.vol.has_entry(expiry):
            return
        try:
            spot = self.p.oracle.price()[0]
        except Exception:
            mark("list: oracle down")
            return
        self.dirty = True
        self.market_moved()
        added = list_expiry(self.p, expiry, spot, WAD * 7 // 10, 0)
        self.series.update(added)
        self.live.append(expiry)
        mark("list: new expiry")


class AdminRules(KappaMachine):
    """Pauses and sequencer outages."""

    @step(paused=st.sampled_from([True, False, False]))
    def pause(self, paused: bool) -> None:
        """The guardian pauses or resumes new risk (fills and hedges; never exits)."""
        ok, _ = self.attempt("pause", self.engine.set_paused, paused, sender=self.p.admin)
        assert ok
        self.paused = paused

    @step(down=st.sampled_from([True, False, False]))
    def sequencer(self, down: bool) -> None:
        """The L2 sequencer goes down or comes back (risk increases wait out the grace)."""
        self.send(self.p.sequencer_feed.set_status, down, sender=self.p.admin)
        mark(f"sequencer {'down' if down else 'up'}")


NO_LIMIT = 2**255 - 1
BID_REASONS = frozenset(
    {
        "liquidator: no auction",
        "liquidator: healthy",
        "liquidator: price above limit",
        "liquidator: bidder below initial margin",
        "engine: too many positions",
    }
)
# Value a bid may lose to rounding across the accounts it touches (USD wad): sizes move rounded
# toward zero, cash and prices round to the wei, MtM is a sum of rounded prices.
BID_TOLERANCE = 10**9


class LiquidationRules(KappaMachine):
    """Auctions, bids, their end, and the insurance fund (contracts/liquidation/Liquidator.vy).

    Traders start thin (THIN_USD of cash besides their WETH), so that a few fills, `lever_up`
    and a price move make accounts liquidatable, and some insolvent."""

    THIN_USD = 20_000

    def setup_accounts(self) -> None:
        for t in self.traders:
            amount = self.cash(t.address) // USD_SCALE - self.THIN_USD * 10**6
            if amount > 0:
                self.send(
                    self.engine.withdraw,
                    self.p.usd.address,
                    amount,
                    t.address,
                    sender=t.address,
                )
                self.ghost.withdraw(t.address, usd=amount)
        self.now = self.prev = self.current()

    def apply_engine_logs(self) -> dict[str, int]:
        """Apply the engine's liquidation hooks of the last transaction to the ghost, in order
        (settlements, portfolio and cash moves, socialized loss); returns the totals of the
        Liquidator's BadDebt events by account."""
        settled: set[str] = set()
        bad_debt: dict[str, int] = {}
        g = self.ghost
        # The logs are the last call's: read both contracts' before any view call.
        liq = self.p.liquidator
        liquidator_logs = self.chain.decode_logs(liq.compiled, liq.address)
        for e in self.chain.decode_logs_of(self.engine, self.p.perp_book):
            if e.name.startswith("Perp"):
                g.perp_event(e.name, e.args, self.account_of)
                mark(f"liquidation: {e.name}")
            elif e.name == "PositionSettled" and e.account not in settled:
                g.settle_expired(e.account)
                settled.add(e.account)
            elif e.name == "PortfolioMoved":
                g.move_portfolio(e.account, e.receiver, e.fraction)
                settled |= {e.account, e.receiver}
            elif e.name == "CashMoved":
                g.move_cash(e.sender, e.receiver, e.amount)
            elif e.name == "ReserveCollected":
                g.collect_reserve(e.fund)
                mark("liquidation: reserve collected into the fund")
            elif e.name == "LossSocialized":
                g.socialize_loss(e.receiver, e.amount)
                mark("liquidation: loss socialized")
                if e.deficit:
                    mark("liquidation: deficit beyond the cash pool")
        assert g.deficit == self.engine.deficit()
        for e in liquidator_logs:
            if e.name == "BadDebt":
                bad_debt[e.account] = bad_debt.get(e.account, 0) + e.amount
        return bad_debt

    @postcondition
    def loss_is_realized_when_measured(self, account: str, proof: int) -> None:
        """A full check that opens an auction on an insolvent account realizes its loss at
        once: the account is then worth zero (to a wei or two of share-price rounding), so a
        later deposit cannot be made to pay for it."""
        if proof != NO_WITNESS:
            return
        h = self.health(account)
        assert h is not None and h.mtm is not None
        assert h.mtm >= -2 * (1 + self.now.share_price // WAD), (account, h.mtm)

    def record_realized_loss(self) -> None:
        """Apply an auction start's realized loss (the fund's payment, the socialized rest) to
        the ghost, and check it was recorded as bad debt."""
        # The logs are the last call's: decode them before any other read.
        bad_debt = self.apply_engine_logs()
        debt_before = self.p.liquidator.bad_debt() - sum(bad_debt.values())
        self.socialized_loss_is_bad_debt(debt_before, sum(bad_debt.values()))

    def threshold(self) -> int:
        return int(self.p.oracle.liquidation_threshold())

    @step(victim=trader, witness=st.booleans(), other=st.integers(0, 2**8))
    def start_auction(self, victim: int, witness: bool, other: int) -> None:
        """Anyone starts an auction, proving H_MM below the threshold by a full check or by the
        account's witness scenario."""
        account = self.traders[victim].address
        h = self.health(account)
        if h is None:
            mark("start_auction: oracle down")
            return
        proof = NO_WITNESS
        if witness:
            h_mm, proof = self.engine.health(account, False)
            self.witness_never_lies(account, h_mm, proof, other)
        self.healthy_accounts_cannot_be_auctioned(account, h, proof)

    @postcondition
    def witness_never_lies(self, account: str, h_mm: int, witness: int, other: int) -> None:
        """The witness scenario reproduces H_MM exactly (`scenario_health`), and any other
        scenario is at least H_MM: no scenario can prove a healthy account unhealthy."""
        engine = self.engine
        assert engine.scenario_health(account, witness, False) == h_mm, (account, witness)
        points = 3 * (2 * GRID[0] + 1)
        other = (witness + 1 + other % (points - 1)) % points
        assert engine.scenario_health(account, other, False) >= h_mm, (account, other)

    @postcondition
    def healthy_accounts_cannot_be_auctioned(self, account: str, h: Any, proof: int) -> None:
        """An auction starts exactly when the account's H_MM is below the liquidation threshold
        (0, or -buffer while the sequencer is down or in grace): a healthy account is refused,
        by a full check and by any witness; an unhealthy one is accepted."""
        open_ = self.p.liquidator.auction_start(account) != 0
        unhealthy = h.mm < self.threshold()
        healthy_reason = "liquidator: healthy" if proof == NO_WITNESS else None
        reasons = {"liquidator: auction open"} if open_ else set()
        if not unhealthy:
            reasons |= {"liquidator: healthy", "liquidator: witness does not prove"}
        # A full check that finds MtM < 0 realizes the loss: the fund pays the account.
        self.allow(account, self.w.fund)
        ok, got = self.attempt(
            "start_auction",
            self.p.liquidator.start_auction,
            account,
            proof,
            sender=self.w.outsider,
            allowed=reasons,
        )
        if ok:
            self.record_realized_loss()
        if open_:
            assert got == "liquidator: auction open"
        elif unhealthy:
            assert ok, "an unhealthy account could not be auctioned"
            self.loss_is_realized_when_measured(account, proof)
        else:
            assert not ok, f"a healthy account (H_MM {h.mm / WAD}) was auctioned"
            assert healthy_reason is None or got == healthy_reason

    @step(
        victim=trader,
        bidder=st.integers(0, TRADERS),
        percent=st.sampled_from([10, 25, 50, 100]),
        limit=st.sampled_from([NO_LIMIT, NO_LIMIT, 0]),
    )
    def bid(self, victim: int, bidder: int, percent: int, limit: int) -> None:
        """A trader (bidder < TRADERS) or the backstop bids for a fraction of an auctioned
        account."""
        account = self.traders[victim].address
        who = self.w.backstop if bidder == TRADERS else self.traders[bidder].address
        if who == account or self.p.liquidator.auction_start(account) == 0:
            mark("bid: no auction or self")
            return
        self.do_bid(account, who, percent * WAD // 100, limit)

    def do_bid(self, account: str, bidder: str, fraction: int, limit: int) -> bool:
        fund = self.w.fund
        before = {a: self.health(a) for a in (account, bidder)}
        cash_before = self.cash(fund)
        debt_before = self.p.liquidator.bad_debt()
        self.allow(account, bidder, fund)
        ok, returned = self.attempt(
            "bid",
            self.p.liquidator.bid,
            account,
            fraction,
            limit,
            sender=bidder,
            allowed=BID_REASONS | ORACLE_DOWN,
        )
        if not ok:
            return False
        liq = self.p.liquidator
        bids = [e for e in self.chain.decode_logs(liq.compiled, liq.address) if e.name == "Bid"]
        bad_debt = self.apply_engine_logs()
        assert len(bids) == 1
        b = bids[0]
        assert tuple(returned) == (b.fraction, b.price)
        mark(f"bid: {'insolvent' if b.mtm <= 0 else 'solvent'}, whole={b.fraction == WAD}")
        self.current()
        after = {a: self.health(a) for a in (account, bidder)}
        self.bids_never_lower_health(account, before[account], after[account])
        self.bid_conserves_value(account, bidder, before, after, cash_before, b)
        self.socialized_loss_is_bad_debt(debt_before, sum(bad_debt.values()))
        self.bid_ends_what_it_restores(account, after[account], b)
        if b.mtm <= 0:
            self.insolvent_bidder_gets_its_whole_reward(bidder, before[bidder], after[bidder], b)
        return True

    @postcondition
    def bid_ends_what_it_restores(self, account: str, after: Any, b: Any) -> None:
        """A bid that takes the whole account, or brings its H_MM back to >= 0, ends the
        auction (a later shortfall starts a new one at d_start); an auction left open is one
        whose account is still below zero."""
        open_ = self.p.liquidator.auction_start(account) != 0
        if b.fraction == WAD:
            assert not open_
        elif open_:
            assert after is not None and after.mm < BID_TOLERANCE, (account, after)

    @postcondition
    def insolvent_bidder_gets_its_whole_reward(
        self, bidder: str, before: Any, after: Any, b: Any
    ) -> None:
        """An insolvent account's loss is realized before the bid (it is worth zero), so the
        bidder's value grows by exactly its reward f d R, whoever else the socialization
        charges: the bidder is never charged its own reward."""
        assert before is not None and after is not None
        gained = after.mtm - before.mtm
        assert abs(gained + b.price) <= BID_TOLERANCE, (gained / WAD, -b.price / WAD)

    @postcondition
    def bids_never_lower_health(self, account: str, before: Any, after: Any) -> None:
        """A bid never lowers the liquidated account's H_MM."""
        assert before is not None and after is not None
        assert after.mm >= before.mm, (account, before.mm / WAD, after.mm / WAD)

    @postcondition
    def bid_conserves_value(
        self,
        account: str,
        bidder: str,
        before: dict[str, Any],
        after: dict[str, Any],
        fund_before: int,
        b: Any,
    ) -> None:
        """A bid moves value, creates none: the account gives up at most the discount on what
        it sells (f MtM d) when solvent, the insurance fund gains its fee (exactly, up to the
        rounding of cash shares once a loss was socialized), and the
        account, bidder and fund together end where they started (less what a socialized loss
        took from every other positive balance)."""
        fee = b.fund_fee
        d_acct = after[account].mtm - before[account].mtm
        d_bidder = after[bidder].mtm - before[bidder].mtm
        d_fund = self.cash(self.w.fund) - fund_before
        if b.mtm > 0:
            # Exact at a share price of 1; below it the fund's credit rounds down (shares).
            price = self.now.share_price
            rounding = 0 if price == WAD else price // WAD + 2
            assert fee - rounding <= d_fund <= fee, (d_fund, fee)
            discount = -(-b.mtm * b.fraction // WAD) * b.discount // WAD
            assert -d_acct <= discount + BID_TOLERANCE, (d_acct / WAD, discount / WAD)
        # A socialized loss pays the bidder from every positive balance, these three included.
        total = d_acct + d_bidder + d_fund
        socialized = self.ghost.socialized - self._socialized_seen
        self._socialized_seen = self.ghost.socialized
        assert -BID_TOLERANCE <= total <= socialized + BID_TOLERANCE, (total, socialized)

    @postcondition
    def socialized_loss_is_bad_debt(self, debt_before: int, reported: int) -> None:
        """Every socialized loss is recorded as bad debt, to the wei: the Liquidator's
        bad_debt grew by the BadDebt events of the bid, and over the whole run equals the losses
        the engine socialized."""
        assert self.p.liquidator.bad_debt() - debt_before == reported
        assert self.p.liquidator.bad_debt() == self.ghost.socialized

    @step(who=trader, slack=st.sampled_from([1, 100, 2000]))
    def lever_up(self, who: int, slack: int) -> None:
        """A trader borrows out everything above initial margin but `slack` USD, into debt if
        its underlying backs it (so that the next move against it makes it liquidatable, or
        insolvent)."""
        account = self.traders[who].address
        h = self.health(account)
        if h is None or not self.p.oracle.risk_increase_allowed():
            return
        amount = (h.im - slack * WAD) // USD_SCALE  # past the cash balance: a debt
        if amount <= 0:
            mark("lever up: nothing above the limit")
            return
        self.allow(account)
        debt_before = self.current().accounts[account].debt
        ok, reason = self.attempt(
            "lever up",
            self.engine.withdraw,
            self.p.usd.address,
            amount,
            account,
            sender=account,
            allowed=(MARGIN | STALE if self.has_positions(account) else frozenset()) | BORROW,
        )
        if ok:
            self.ghost.withdraw(account, usd=amount)
            self.utilization_within_cap(account, debt_before)
        elif reason in MARGIN:
            self.refusal_is_justified(account, amount * USD_SCALE)

    @step()
    def liquidate(self) -> None:
        """The backstop resolves every unhealthy trader (as a keeper would): start the auction,
        bid for everything it may take until the account is gone or healthy, end the auction."""
        for t in self.traders:
            self.unhealthy_accounts_can_be_resolved(t.address)

    @postcondition
    def unhealthy_accounts_can_be_resolved(self, account: str) -> None:
        """An account with H_MM below the threshold can always be brought back: the auction
        starts, a well-capitalised bidder's bids succeed and raise its health, and within a
        few bids the auction ends (the account taken whole, or healthy and closed)."""
        h = self.health(account)
        if h is None or h.mm >= self.threshold():
            mark("liquidate: nothing to do")
            return
        liq = self.p.liquidator
        if liq.auction_start(account) == 0:
            self.allow(account, self.w.fund)
            ok, _ = self.attempt(
                "liquidate: start", liq.start_auction, account, NO_WITNESS, sender=self.w.outsider
            )
            assert ok
            self.record_realized_loss()
        for _ in range(6):
            h = self.health(account)
            assert h is not None
            if h.mm >= 0:
                break
            fraction = WAD
            ok = self.do_bid(account, self.w.backstop, fraction, NO_LIMIT)
            assert ok, "the backstop's bid on an unhealthy account failed"
            if liq.auction_start(account) == 0:
                mark("liquidate: taken whole")
                return
        h = self.health(account)
        assert h is not None and h.mm >= 0, "six bids did not restore the account"
        ok, _ = self.attempt("liquidate: end", liq.end_auction, account, sender=self.w.outsider)
        assert ok
        mark("liquidate: restored and closed")

    @step(victim=trader)
    def end_auction(self, victim: int) -> None:
        """Anyone ends an auction: allowed exactly when the account is healthy again."""
        account = self.traders[victim].address
        liq = self.p.liquidator
        open_ = liq.auction_start(account) != 0
        h = self.health(account)
        ok, got = self.attempt(
            "end_auction",
            liq.end_auction,
            account,
            sender=self.w.outsider,
            allowed={"liquidator: no auction", "liquidator: unhealthy"} | ORACLE_DOWN,
        )
        if not open_:
            assert got == "liquidator: no auction"
        elif h is not None:
            assert ok == (h.mm >= 0), (h, got)

    @step(usd=st.integers(1, 100_000))
    def insurance_deposit(self, usd: int) -> None:
        """Anyone adds cash to the insurance fund."""
        self.allow(self.w.fund)
        amount = usd * 10**6
        ok, _ = self.attempt(
            "insurance deposit",
            self.p.liquidator.deposit_insurance,
            amount,
            sender=self.w.outsider,
        )
        assert ok
        self.ghost.deposit(self.w.fund, usd=amount)

    @step(percent=st.integers(1, 150))
    def insurance_withdraw(self, percent: int) -> None:
        """The owner takes cash out of the fund: refused while any auction is open (a solvent
        one can turn insolvent with the next move), or beyond the fund."""
        fund = self.cash(self.w.fund)
        amount = max(fund, 0) * percent // 100 // USD_SCALE
        if amount == 0:
            return
        self.allow(self.w.fund)
        open_auctions = self.p.liquidator.open_auctions()
        ok, reason = self.attempt(
            "insurance withdraw",
            self.p.liquidator.withdraw_insurance,
            amount,
            self.p.admin,
            sender=self.p.admin,
            allowed={"liquidator: auction open"} | MARGIN | ORACLE_DOWN,
        )
        assert (reason == "liquidator: auction open") == (open_auctions > 0 and not ok)
        if open_auctions:
            assert not ok, "the fund paid out while an auction was open"
        if ok:
            self.ghost.withdraw(self.w.fund, usd=amount)
            assert amount * USD_SCALE <= fund, "the fund paid out more than it held"

    @always
    def fund_is_its_engine_cash(self) -> None:
        """The insurance fund is the Liquidator's own cash in the engine, never anything else,
        and the recorded bad debt equals every loss the engine socialized."""
        assert self.now.insurance_fund == self.cash(self.w.fund)
        assert self.now.bad_debt == self.ghost.socialized


class StressRules(TimeRules):
    """Adversarial market moves aimed at the liquidation boundary (LiquidationMachine only:
    each costs up to forty health reads)."""

    @step(market=True, down=st.booleans())
    def drift_to_liquidation(self, down: bool) -> None:
        """The spot drifts 3% at a time (all feeds) until some trader's H_MM turns negative,
        at most ten times: reaches accounts that are liquidatable but still solvent."""
        for _ in range(10):
            self.publish(self.spot * (97 if down else 103) // 100)
            healths = [self.health(t.address, full=False) for t in self.traders]
            if any(h is not None and h.mm < 0 for h in healths):
                mark("drift: a trader became liquidatable")
                return
