"""Interest-bearing cash (contracts/margin/interest.vy in MarginEngine): the golden sequence
against keeper/interest.py to the wei, every revert path with its reason, the rate and the
rounding at fixed values, the reserve paid to the fund, and socialization on the supply side."""

from __future__ import annotations

import contextlib
import json

import boa
import pytest

from keeper import interest as ki
from tests import protocol as P  # noqa: N812
from tests.unit.margin import golden_cash

WAD = 10**18
USD = 10**6
BP = 10**14
# A sane deployment's parameters (deploy/networks/*.yaml `interest:`).
PARAMS = (0, 4 * WAD // 100, 75 * WAD // 100, 8 * WAD // 10, WAD // 10, 9 * WAD // 10)


@pytest.fixture(scope="module")
def world():
    with boa.env.anchor():
        p = P.deploy()
        yield p


@pytest.fixture(autouse=True)
def isolate(world):
    with boa.env.anchor():
        yield


def withdraw(p, who, units):
    with boa.env.prank(who):
        p.engine.withdraw(p.usd.address, units, who)


def deposit(p, who, units):
    p.usd.mint(who, units)
    with boa.env.prank(who):
        p.usd.approve(p.engine.address, units)
        p.engine.deposit(p.usd.address, units)


def test_golden_sequence_matches_the_model_to_the_wei(world):
    """A committed random sequence (tests/unit/margin/golden_cash.py) replayed step by step:
    indices, totals, every account's shares and cash, utilization, rate and reserve equal the
    Python model's exactly, and the model's expected reverts revert with their reasons."""
    p = world
    data = json.loads(golden_cash.PATH.read_text())
    assert data == golden_cash.generate(), "golden_cash.json is stale: regenerate it"
    names = {
        a: boa.env.generate_address(a) for a in (*golden_cash.SUPPLIERS, *golden_cash.BORROWERS)
    }
    names[golden_cash.FUND] = p.liquidator.address
    p.engine.set_interest_params(*data["params"])
    for b in golden_cash.BORROWERS:
        p.fund(names[b], weth=data["borrower_weth"])
    kinds: dict[str, int] = {}
    for i, step in enumerate(data["steps"]):
        kind = step["kind"]
        kinds[kind] = kinds.get(kind, 0) + 1
        reason = step.get("reverts")
        ctx = boa.reverts(reason) if reason else contextlib.nullcontext()
        with ctx:
            if kind == "time":
                boa.env.time_travel(seconds=step["seconds"])
                p.set_spot(3000.0)
            elif kind in ("deposit", "repay"):
                deposit(p, names[step["who"]], step["units"])
            elif kind in ("withdraw", "borrow"):
                withdraw(p, names[step["who"]], step["units"])
            elif kind == "collect":
                p.engine.collect_reserve()
            else:
                p.engine.set_interest_params(*step["params"])
        want = step["state"]
        pool = p.engine.cash_pool()
        got = {
            "supply_index": pool[0],
            "borrow_index": pool[1],
            "total_supply": pool[2],
            "total_borrows": pool[3],
            "utilization": pool[4],
            "rate": pool[5],
            "reserve": pool[6],
            "totals": list(p.engine.cash_totals()[:2]),
            "accounts": {
                a: [p.engine.cash_shares(addr), p.engine.cash_debt(addr), p.engine.cash(addr)]
                for a, addr in names.items()
            },
        }
        assert got == want, (i, step["kind"])
    # The sequence exercised every kind of step, interest and the cap.
    assert set(kinds) == {"deposit", "withdraw", "borrow", "repay", "time", "collect", "params"}
    assert any(s.get("reverts") == "engine: utilization cap" for s in data["steps"])
    last = data["steps"][-1]["state"]
    assert last["borrow_index"] > WAD and last["supply_index"] > WAD


def test_rate_is_kinked_at_fixed_values(world):
    """r(U) = base + slope1 min(U, kink) + slope2 max(U - kink, 0): 2% + 10% x 0.5 = 7% below
    the kink, 2% + 10% x 0.8 + 100% x 0.1 = 20% above it; utilization is borrows / supply."""
    p = world
    p.engine.set_interest_params(WAD // 50, WAD // 10, WAD, WAD * 8 // 10, 0, WAD)
    alice, bob = boa.env.generate_address("alice"), boa.env.generate_address("bob")
    deposit(p, alice, 1_000_000 * USD)
    p.fund(bob, weth=1_000)
    withdraw(p, bob, 500_000 * USD)
    pool = p.engine.cash_pool()
    assert pool[4] == WAD // 2 and pool[5] == 7 * WAD // 100
    withdraw(p, bob, 400_000 * USD)
    pool = p.engine.cash_pool()
    assert pool[4] == 9 * WAD // 10 and pool[5] == 20 * WAD // 100
    params = ki.RateParams(WAD // 50, WAD // 10, WAD, WAD * 8 // 10, 0, WAD)
    assert ki.rate(params, WAD // 2) == 7 * WAD // 100
    assert ki.rate(params, 9 * WAD // 10) == 20 * WAD // 100


def test_a_year_of_interest_moves_debt_and_supply_by_the_rule(world):
    """One accrual over a year at 7%: the debt grows by 7% (rounded up), suppliers earn
    (1 - 10%) of it (rounded down), the reserve is the rest, and collecting pays it into the
    insurance fund's cash."""
    p = world
    p.engine.set_interest_params(WAD // 50, WAD // 10, WAD, WAD * 8 // 10, WAD // 10, WAD)
    alice, bob = boa.env.generate_address("alice"), boa.env.generate_address("bob")
    deposit(p, alice, 1_000_000 * USD)
    p.fund(bob, weth=1_000)
    withdraw(p, bob, 500_000 * USD)
    boa.env.time_travel(seconds=ki.YEAR)
    assert p.engine.cash(bob) == -535_000 * WAD
    assert p.engine.cash(alice) == 1_031_500 * WAD
    assert p.engine.cash_pool()[6] == 3_500 * WAD
    fund = p.liquidator.insurance_fund()
    p.engine.accrue()
    assert p.engine.collect_reserve() == 3_500 * WAD
    index = p.engine.cash_pool()[0]
    assert index == 10_315 * WAD // 10_000
    # Minted as supply shares rounded down, worth their value rounded down.
    assert p.liquidator.insurance_fund() == fund + ki.supply_value(
        3_500 * WAD * WAD // index, index
    )
    assert p.engine.cash_pool()[6] == 0


def test_the_utilization_cap_refuses_a_borrowing_withdrawal_and_swap(world):
    """A withdrawal into debt that would take utilization past the cap reverts; one within it
    passes; a supplier's own withdrawal is never capped (deposits stay withdrawable)."""
    p = world
    p.engine.set_interest_params(*PARAMS)
    alice, bob = boa.env.generate_address("alice"), boa.env.generate_address("bob")
    deposit(p, alice, 100_000 * USD)
    p.fund(bob, weth=100)
    with boa.reverts("engine: utilization cap"):
        withdraw(p, bob, 90_001 * USD)
    withdraw(p, bob, 90_000 * USD)
    assert p.engine.cash_pool()[4] == 9 * WAD // 10
    # Alice can still take out the buffer: 10% of the supply.
    withdraw(p, alice, 10_000 * USD)
    assert p.usd.balanceOf(p.engine.address) == 0
    # A hedge swap that borrows cash is held to the cap too.
    _, pools = P.deploy_venues(p)
    carol = boa.env.generate_address("carol")
    p.fund(carol, weth=100)
    with boa.env.prank(carol), boa.reverts("engine: utilization cap"):
        p.engine.swap(
            carol, p.usd.address, [pools[0].address], [1_000 * USD], 0, boa.env.timestamp + 60
        )


def test_interest_params_revert_outside_the_hard_bounds(world):
    """Every bound of set_interest_params, and its role, reverts with its reason."""
    p = world
    bad = [
        (1_001 * BP, *PARAMS[1:]),  # base above 10%
        (PARAMS[0], WAD + BP, *PARAMS[2:]),  # slope1 above 100%
        (*PARAMS[:2], 3 * WAD + BP, *PARAMS[3:]),  # slope2 above 300%
        (*PARAMS[:3], 999 * BP, *PARAMS[4:]),  # kink below 10%
        (*PARAMS[:3], 9_901 * BP, *PARAMS[4:]),  # kink above 99%
        (*PARAMS[:4], 2_001 * BP, PARAMS[5]),  # reserve factor above 20%
        (*PARAMS[:5], 4_999 * BP),  # cap below 50%
        (*PARAMS[:5], WAD + BP),  # cap above 100%
        (PARAMS[0] + 1, *PARAMS[1:]),  # not a whole basis point
    ]
    for params in bad:
        with boa.reverts("engine: bad interest params"):
            p.engine.set_interest_params(*params)
        with pytest.raises(ki.CashError, match="bad interest params"):
            ki.RateParams(*params).check()
    with boa.env.prank(boa.env.generate_address("mallory")), boa.reverts("engine: not risk admin"):
        p.engine.set_interest_params(*PARAMS)
    p.engine.set_interest_params(*PARAMS)
    (log,) = p.engine.get_logs()
    assert (
        log.base,
        log.slope1,
        log.slope2,
        log.kink,
        log.reserve_factor,
        log.utilization_cap,
    ) == PARAMS
    assert p.engine.cash_totals()[2:] == (ki.RateParams(*PARAMS).packed(), PARAMS[5])


def test_collect_reserve_needs_a_liquidator(world):
    p = world
    p.engine.set_role("liquidator", "0x" + "00" * 20)
    with boa.reverts("engine: no liquidator"):
        p.engine.collect_reserve()


def test_share_totals_are_bounded(world):
    """Deposits past 2**96 supply shares revert instead of wrapping the packed totals."""
    p = world
    whale = boa.env.generate_address("whale")
    units = 2**96 // 10**12 + 1
    with boa.reverts("engine: cash totals too large"):
        deposit(p, whale, units)


def test_socialized_loss_lowers_supply_never_debt(world):
    """A socialized loss cuts the supply index; borrow shares and the borrow index stay, so
    the debt is what it was."""
    p = world
    p.engine.set_interest_params(*PARAMS)
    alice, bob, dave = (boa.env.generate_address(x) for x in ("alice", "bob", "dave"))
    deposit(p, alice, 100_000 * USD)
    p.fund(bob, weth=100)
    withdraw(p, bob, 50_000 * USD)
    debt, index = p.engine.cash(bob), p.engine.cash_pool()[1]
    with boa.env.prank(p.liquidator.address):
        p.engine.socialize_loss(dave, 10_000 * WAD)
    pool = p.engine.cash_pool()
    assert pool[1] == index and p.engine.cash(bob) == debt
    assert pool[0] == 9 * WAD // 10
    assert p.engine.cash(dave) == ki.supply_value(10_000 * WAD * WAD // pool[0], pool[0])
    assert p.engine.cash(alice) == 90_000 * WAD


def test_accrue_is_once_a_block_and_emits_the_indices(world):
    """The first touch of a block accrues and logs both indices; a second one in the same
    block changes nothing."""
    p = world
    p.engine.set_interest_params(*PARAMS)
    alice, bob = boa.env.generate_address("alice"), boa.env.generate_address("bob")
    deposit(p, alice, 100_000 * USD)
    p.fund(bob, weth=100)
    withdraw(p, bob, 50_000 * USD)
    boa.env.time_travel(seconds=3600)
    p.engine.accrue()
    (log,) = p.engine.get_logs()
    pool = p.engine.cash_pool()
    assert (log.supply_index, log.borrow_index) == pool[:2] and pool[1] > WAD
    p.engine.accrue()
    assert p.engine.get_logs() == [] and p.engine.cash_pool()[:2] == pool[:2]
