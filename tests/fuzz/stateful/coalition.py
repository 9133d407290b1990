"""The coalition: one party controlling every trader account (and the operator of two of them),
acting on a market that does not move.

The traders (with the outsider, who pays into their accounts) trade with each other at any
price, operate each other, lever up to their limits, start auctions on each other and bid for
each other. Nothing moves the market: no price, vol or time step runs, so no account can become
liquidatable except through its own actions. The properties are the soundness rules of DESIGN.md
("Margin model", "Liquidation"):

- the coalition's total value (its accounts' MtM plus its wallets at the oracle spot) never
  grows, beyond rounding the protocol keeps;
- the insurance fund and the passive saver (the backstop's deposit) never lose;
- H_IM <= H_MM for every trader on every visited state.

Rules that only the coalition needs live here; the trading, collateral and liquidation rules
come from rules.py.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from keeper.orders import as_tuple
from tests.deployment import DAY, WAD
from tests.fuzz.protocol_revm import USD_SCALE
from tests.fuzz.stateful import mirror
from tests.fuzz.stateful.base import ORACLE_DOWN, always, mark, postcondition, step
from tests.fuzz.stateful.rules import (
    BAND,
    GRACE,
    MARGIN,
    NO_LIMIT,
    NO_WITNESS,
    LiquidationRules,
    trader,
)
from tests.fuzz.stateful.world import TRADERS, SeriesInfo

# Value the coalition may appear to gain from rounding over a run (USD wad): every MtM is a sum
# of rounded prices, and the protocol's rounding only takes value from the coalition.
COALITION_TOLERANCE = 10**9


class CoalitionRules(LiquidationRules):
    """The coalition's moves on a still market. Replaces the liquidation rules that involve
    honest outsiders (the backstop's keeper sweep and bids, the fund's owner) with bids by
    coalition members only."""

    def setup_accounts(self) -> None:
        super().setup_accounts()
        self.baseline = self.values()

    # -- value accounting ----------------------------------------------------------------------

    def coalition(self) -> list[str]:
        # The outsider pays into traders' accounts (deposit_for): a member too.
        return [t.address for t in self.traders] + [self.w.operator, self.w.outsider]

    def values(self) -> tuple[int, int, int]:
        """(coalition value, insurance fund, saver's cash), USD wad."""
        spot = self.p.oracle.price()[0]
        total = 0
        for a in self.coalition():
            h = self.health(a)
            assert h is not None and h.mtm is not None
            wallet = self.p.usd.balanceOf(a) * USD_SCALE + self.p.weth.balanceOf(a) * spot // WAD
            total += h.mtm + wallet
        return total, self.cash(self.w.fund), self.cash(self.w.backstop)

    @always
    def coalition_gains_nothing(self) -> None:
        """Without a price, vol or time move, the coalition's value never grows, and the
        insurance fund and the other users never lose."""
        if not hasattr(self, "baseline"):
            return
        coalition, fund, saver = self.values()
        base_coalition, base_fund, base_saver = self.baseline
        assert coalition <= base_coalition + COALITION_TOLERANCE, (
            f"coalition gained {(coalition - base_coalition) / WAD} USD"
        )
        assert fund >= base_fund, f"insurance fund lost {(base_fund - fund) / WAD} USD"
        assert saver >= base_saver, f"a saver lost {(base_saver - saver) / WAD} USD"

    @always
    def initial_margin_is_stricter(self) -> None:
        """H_IM <= H_MM on every visited state (the IM check covers MM's scenarios)."""
        for t in self.traders:
            h = self.health(t.address)
            assert h is not None and h.im is not None
            assert h.im <= h.mm, (t.address, h.im / WAD, h.mm / WAD)

    # -- the coalition's directed moves --------------------------------------------------------

    def unit_value(self, sid: int) -> int:
        """The model value of one unit of a series (the flat scenario at spot), USD wad."""
        s = self.series[sid]
        market = self.market()
        assert market is not None
        book = mirror.Book(0, 0, ((s.strike, s.expiry, s.is_call, WAD),))
        return int(float(mirror.evaluate([book], market).mtm[0]) * WAD)

    @step(steps=st.sampled_from([1, 2, 4]), above=st.booleans())
    def list_between_grid(self, steps: int, above: bool) -> None:
        """The risk admin (not a member) lists a call and a put of the nearest expiry struck
        `steps` MM grid steps from spot: on a point of the MM grid and between two of IM's.
        Listing in an expiry that is already live moves no account's margin."""
        now = self.chain.timestamp
        live = sorted({s.expiry for s in self.series.values() if s.expiry > now})
        if not live:
            return
        spot = self.p.oracle.price()[0]
        mm, grid = self.engine.risk_params()[1], self.engine.risk_params()[2]
        atm = self.p.vol.entry(live[0])[0]
        u = self.p.calculator.spot_shock(mm, grid, atm)
        n = grid[0]
        move = steps * u // n
        strike = spot * (WAD + move if above else WAD - move) // WAD // WAD * WAD
        before = {t.address: self.health(t.address) for t in self.traders}
        for is_call in (True, False):
            sid = (live[0] // 3600) << 121 | int(is_call) << 120 | strike
            if sid in self.series:
                continue
            self.send(self.engine.list_series, live[0], strike, is_call, sender=self.p.admin)
            self.series[sid] = SeriesInfo(live[0], strike, is_call)
            mark("coalition: listed between grid points")
        self.listing_moves_no_margin(before)

    @step(hours=st.integers(2, 20), atm=st.sampled_from([30, 100, 300]))
    def list_nearer_expiry(self, hours: int, atm: int) -> None:
        """The risk admin lists a call on a new expiry nearer than every live one, at a high or
        low ATM vol: before sigma_ref was each account's own, this moved every account's grid
        (a short-put account went from H_MM +206 to -1,219 at 100%)."""
        now = self.chain.timestamp
        expiry = (now // 3600 + hours) * 3600
        live = {s.expiry for s in self.series.values() if s.expiry > now}
        if expiry in live or len(live) >= 16 or self.p.vol.has_entry(expiry):
            return
        spot = self.p.oracle.price()[0]
        before = {t.address: self.health(t.address) for t in self.traders}
        self.send(self.p.vol.update, expiry, atm * WAD // 100, 0, sender=self.p.admin)
        strike = spot // WAD * WAD
        self.send(self.engine.list_series, expiry, strike, True, sender=self.p.admin)
        sid = (expiry // 3600) << 121 | 1 << 120 | strike
        self.series[sid] = SeriesInfo(expiry, strike, True)
        mark("coalition: listed a nearer expiry")
        self.listing_moves_no_margin(before)

    @postcondition
    def listing_moves_no_margin(self, before: dict[str, Any]) -> None:
        """Listing a series (an admin action, not a market move) leaves every account's MtM,
        H_IM and H_MM exactly where they were: sigma_ref is each account's own."""
        self.market_moved()
        for a, h in before.items():
            assert self.health(a) == h, (a, h, self.health(a))

    @step(
        buyer=trader,
        seller=st.integers(1, TRADERS - 1),
        pick=st.integers(0, 2**16),
        size=st.integers(10, 1000),
        percent=st.sampled_from([0, 50, 95, 100, 105, 200, 1000]),
    )
    def straddle(self, buyer: int, seller: int, pick: int, size: int, percent: int) -> None:
        """One member buys a call and a put of the same strike and expiry from another, at a
        percentage of their model value (a long straddle's worst scenario sits at its strike:
        between two grid points of one mode and on a point of the other)."""
        seller = (buyer + seller) % TRADERS
        live = self.live_series()
        calls = [sid for sid in live if self.series[sid].is_call]
        if not calls:
            return
        call = calls[pick % len(calls)]
        s = self.series[call]
        puts = [
            sid
            for sid in live
            if not self.series[sid].is_call
            and (self.series[sid].strike, self.series[sid].expiry) == (s.strike, s.expiry)
        ]
        if not puts:
            return
        for sid in (call, puts[0]):
            self.trade(seller, buyer, sid, size * WAD // 10, self.unit_value(sid) * percent // 100)

    def trade(self, maker: int, taker: int, sid: int, amount: int, price: int) -> None:
        """`taker` buys `amount` of series `sid` from `maker` at `price` (USD wad per unit)."""
        self.nonce += 1
        m = self.traders[maker]
        order = m.order(sid, False, amount, max(price, 0), self.nonce, self.chain.timestamp + DAY)
        signature = m.sign(self.p, order)
        taker_address = self.traders[taker].address
        before = self.health_before(m.address, taker_address)
        self.allow(m.address, taker_address)
        ok, _ = self.attempt(
            "coalition trade",
            self.engine.fill,
            as_tuple(order),
            signature,
            amount,
            taker_address,
            sender=taker_address,
            allowed=MARGIN | GRACE | ORACLE_DOWN | BAND | {"engine: too many positions"},
        )
        if not ok:
            return
        self.ghost.fill(m.address, taker_address, sid, False, amount, order["price"])
        self.margin_rule_holds(m.address, before[m.address])
        self.margin_rule_holds(taker_address, before[taker_address])
        self.healthy_stays_healthy(before)

    @step(who=trader, pick=st.integers(0, 7), percent=st.sampled_from([0, 1, 10, 50]))
    def sell_back(self, who: int, pick: int, percent: int) -> None:
        """A member closes one of its positions against another member at a fraction of its
        model value (a long sells cheap, a short buys back dear: value handed to the other)."""
        account = self.traders[who].address
        positions = self.current().accounts[account].positions
        if not positions:
            return
        sid, size = positions[pick % len(positions)]
        if self.series[sid].expiry <= self.chain.timestamp:
            return
        other = (who + 1) % TRADERS
        value = self.unit_value(sid)
        if size > 0:
            # `who` sells to `other`: other is the taker buying, who the maker selling.
            self.trade(who, other, sid, size, value * percent // 100)
        else:
            # `who` buys back from `other` at a multiple of the value (other sells dear).
            self.trade(other, who, sid, -size, value * (100 + 10 * percent) // 100)

    @step(
        victim=trader,
        bidder=st.integers(1, TRADERS - 1),
        percent=st.sampled_from([10, 50, 100]),
    )
    def bid(self, victim: int, bidder: int, percent: int) -> None:  # type: ignore[override]
        """A member starts an auction on another (full check) and bids for it."""
        account = self.traders[victim].address
        who = self.traders[(victim + bidder) % TRADERS].address
        liq = self.p.liquidator
        if liq.auction_start(account) == 0:
            self.allow(account, self.w.fund)
            ok, _ = self.attempt(
                "coalition start",
                liq.start_auction,
                account,
                NO_WITNESS,
                sender=who,
                allowed={"liquidator: healthy"},
            )
            if not ok:
                return
            self.record_realized_loss()
            mark("coalition: auction started")
        self.do_bid(account, who, percent * WAD // 100, NO_LIMIT)

    # The honest keeper sweep and the fund owner take no part in the coalition machine.
    def liquidate(self) -> None:  # type: ignore[override]
        """Not a rule here."""

    def insurance_withdraw(self, percent: int) -> None:  # type: ignore[override]
        """Not a rule here."""

    def insurance_deposit(self, usd: int) -> None:  # type: ignore[override]
        """Not a rule here."""
