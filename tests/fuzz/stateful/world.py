"""The fuzzed world: one protocol deployment per process on the revm harness, its actors, and a
snapshot every example starts from.

Deployed like tests/protocol.py (`deploy()` + `deploy_venues()`), then set up for trading:
three expiries (1, 3 and 10 days out) with vol entries and six series each (calls and puts at
90%, 100% and 110% of spot), at most MAX_POSITIONS positions per account, and the actors:

- TRADERS makers/takers with keys (they sign orders), each holding USD and WETH in its wallet
  (allowance to the engine and the Router given) and a deposit in its engine account;
- an operator, allowed by the first two traders to fill and hedge for them (within a daily
  hedge-loss budget);
- an outsider with a wallet and no rights over anyone's account;
- a backstop liquidator: an account with a deep deposit that bids in auctions;
- the Liquidator contract, whose own engine account is the insurance fund.

Compiling the contracts takes ~20 s once per process; an example then costs one revert.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.deployment import GRID, IM, MM, REF_VOL, WAD, expiry_at
from tests.fuzz.protocol_revm import Maker, Protocol, deploy, deploy_venues
from tests.harness.revm import Chain, Contract, Snapshot

SPOT = 3000
TRADERS = 4
MAX_POSITIONS = 8
EXPIRY_DAYS = (1, 3, 10)
MONEYNESS = (9, 10, 11)  # strikes at 90%, 100%, 110% of spot
WALLET_USD = 50_000_000 * 10**6
WALLET_WETH = 20_000 * WAD
INITIAL_USD = 200_000 * 10**6
INITIAL_WETH = 10 * WAD
BACKSTOP_USD = 20_000_000 * 10**6
INITIAL_FUND_USD = 50_000 * 10**6
# What the operator may lose to hedge swaps per day for each trader it operates (USD).
HEDGE_BUDGET_USD = 2_000
# Lift EIP-170 like titanoboa: the suite tests behaviour, bench/gas tracks code size.
CODE_SIZE_LIMIT = 2**20


@dataclass(frozen=True)
class SeriesInfo:
    expiry: int
    strike: int
    is_call: bool


@dataclass
class World:
    chain: Chain
    p: Protocol
    lens: Contract
    traders: list[Maker]
    operator: str
    outsider: str
    backstop: str
    series: dict[int, SeriesInfo]
    base: Snapshot

    @property
    def fund(self) -> str:
        """The insurance fund's engine account (the Liquidator contract's own)."""
        return self.p.liquidator.address

    @property
    def accounts(self) -> list[str]:
        """Every engine account the machines track (the lens reads them all each step)."""
        return [t.address for t in self.traders] + [
            self.operator,
            self.outsider,
            self.backstop,
            self.fund,
        ]


def list_expiry(p: Protocol, expiry: int, spot: int, atm: int, skew: int) -> dict[int, SeriesInfo]:
    """Feed a vol entry for `expiry` and list calls and puts at the MONEYNESS strikes."""
    p.vol.update(expiry, atm, skew)
    out = {}
    for m in MONEYNESS:
        strike = spot * m // 10 // WAD * WAD  # whole dollars
        for is_call in (True, False):
            sid = p.engine.list_series(expiry, strike, is_call)
            out[sid] = SeriesInfo(expiry, strike, is_call)
    return out


_WORLD: World | None = None


def world() -> World:
    """The process-wide world, deployed on first use."""
    global _WORLD
    if _WORLD is None:
        _WORLD = _build()
    return _WORLD


def _build() -> World:
    chain = Chain(code_size_limit=CODE_SIZE_LIMIT)
    p = deploy(chain, float(SPOT))
    deploy_venues(p, float(SPOT))
    p.engine.set_risk_params(IM, MM, GRID, REF_VOL, MAX_POSITIONS)
    lens = chain.deploy("tests/fuzz/contracts/FuzzLens.vy")
    series: dict[int, SeriesInfo] = {}
    for i, days in enumerate(EXPIRY_DAYS):
        expiry = expiry_at(chain.timestamp, days)
        atm = WAD * (6 + i) // 10
        series |= list_expiry(p, expiry, SPOT * WAD, atm, -WAD // 10 * (1 - i))
    traders = [Maker.new(f"trader{i}", fast=True) for i in range(TRADERS)]
    operator = chain.new_account("operator", 10**21)
    outsider = chain.new_account("outsider", 10**21)
    backstop = chain.new_account("backstop", 10**21)
    assert p.router is not None
    for account in [t.address for t in traders] + [outsider, backstop]:
        chain.evm.set_balance(account, 10**21)
        for token, amount in ((p.usd, WALLET_USD), (p.weth, WALLET_WETH)):
            token.mint(account, amount)
            for spender in (p.engine, p.router, p.liquidator):
                token.approve(spender.address, 2**256 - 1, sender=account)
    p.engine.deposit(p.usd.address, BACKSTOP_USD, sender=backstop)
    p.liquidator.deposit_insurance(INITIAL_FUND_USD, sender=outsider)
    for t in traders:
        p.engine.deposit(p.usd.address, INITIAL_USD, sender=t.address)
        p.engine.deposit(p.weth.address, INITIAL_WETH, sender=t.address)
    for t in traders[:2]:
        p.engine.set_operator(operator, True, sender=t.address)
        p.engine.set_hedge_budget(HEDGE_BUDGET_USD * WAD, sender=t.address)
    return World(chain, p, lens, traders, operator, outsider, backstop, series, chain.snapshot())
