"""keeper.runtime.planner and keeper.runtime.settings: decisions per block, config validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from keeper.orders import as_tuple
from keeper.runtime.perp_quotes import SignedQuote
from keeper.runtime.planner import (
    WAD,
    BlockInputs,
    LiquidatorTerms,
    bid_profit,
    discount,
    expected_profit,
    plan_block,
    taken_fraction,
)
from keeper.runtime.settings import KeeperConfigError, KeeperSettings, load_keeper, parse_keeper
from keeper.series import PERP_ID

TERMS = LiquidatorTerms(
    d_start=0.02, d_max=0.15, duration=600, fund_share=0.5, buffer=50.0, dust=100.0
)
ADDR = [f"0x{i:040x}" for i in range(1, 7)]


def inputs(**over: object) -> BlockInputs:
    base = dict(
        addresses=ADDR,
        # 0 healthy, 1 liquidatable (no auction), 2 open and under water, 3 open and healthy,
        # 4 the bidder itself (protected), 5 never evaluated (NaN)
        mtm=np.array([1000.0, 500.0, 2000.0, 800.0, -5.0, np.nan]),
        health_im=np.array([10.0, -80.0, -300.0, 5.0, -50.0, np.nan]),
        health_mm=np.array([50.0, -20.0, -200.0, 30.0, -40.0, np.nan]),
        witness_mm=np.array([0, 7, 3, 1, 2, 0], dtype=np.int64),
        auction_start=np.array([0, 0, 1000, 900, 0, 0], dtype=np.int64),
        now=1300,
        terms=TERMS,
        protected=[4],
    )
    base.update(over)
    return BlockInputs(**base)  # type: ignore[arg-type]


def test_discount_and_fraction_follow_the_liquidator():
    d = discount([0, 1000, 700, 1], 1300, TERMS)
    np.testing.assert_allclose(d, [0.0, 0.02 + 0.13 * 300 / 600, 0.15, 0.15], rtol=0, atol=1e-15)
    # f* = (buffer - H) / (P - H), P = MtM (1 - d): (50 + 200) / (2000 * 0.915 + 200)
    f = taken_fraction([2000.0, 90.0, -10.0], [-200.0, -5.0, -20.0], [0.085, 0.085, 0.085], TERMS)
    assert f[0] == pytest.approx(250.0 / (2000.0 * 0.915 + 200.0), rel=1e-15)
    assert f[1] == 1.0 and f[2] == 1.0  # dust, insolvent: whole account
    p = expected_profit([2000.0, -10.0], [-200.0, -20.0], [0.085, 0.085], TERMS, gas_usd=1.0)
    assert p[0] == pytest.approx(f[0] * 2000.0 * 0.085 * 0.5 - 1.0, rel=1e-15)
    assert p[1] == pytest.approx(0.085 * 10.0 - 1.0, rel=1e-15)
    assert bid_profit(2000.0, WAD // 4, 400 * WAD, 2.0) == 2000.0 / 4 - 400.0 - 2.0
    # Insolvent (MtM -28.2): the loss is realized before the move, the bidder's gain is its
    # reward (paid: a negative outlay), here 0.02 x R = 7.02 USD, less gas.
    assert bid_profit(-28.2, WAD, -702 * 10**16, 0.45) == 7.02 - 0.45


def test_plan_starts_bids_and_ends():
    actions = plan_block(inputs(), KeeperSettings())
    kinds = [(a.kind, a.account) for a in actions]
    assert kinds == [("start_auction", ADDR[1]), ("bid", ADDR[2]), ("end_auction", ADDR[3])]
    start, bid, end = actions
    assert start.args == (ADDR[1], 7) and start.target == "liquidator"
    d = 0.02 + 0.13 * 300 / 600
    limit = 2000.0 * (1 - d + 0.5 * d) * 1.01
    assert bid.args[:2] == (ADDR[2], WAD)
    assert bid.args[2] == int(np.ceil(limit * 1e6)) * 10**12
    assert end.args == (ADDR[3],)


def test_plan_respects_roles_in_flight_and_profit():
    s = KeeperSettings.model_validate({"roles": {"liquidator": False}})
    assert plan_block(inputs(), s) == []
    busy = [("start_auction", ADDR[1].upper().replace("0X", "0x")), ("bid", ADDR[2])]
    kinds = [a.kind for a in plan_block(inputs(in_flight=busy), KeeperSettings())]
    assert kinds == ["end_auction"]
    greedy = KeeperSettings.model_validate({"liquidation": {"min_profit_usd": 1e6}})
    assert [a.kind for a in plan_block(inputs(), greedy)] == ["start_auction", "end_auction"]
    # end_at: im keeps an auction open while H_IM < 0 even with H_MM >= 0.
    him = np.array([10.0, -80.0, -300.0, -1.0, -50.0, np.nan])
    assert "end_auction" not in [
        a.kind for a in plan_block(inputs(health_im=him), KeeperSettings())
    ]
    mm = KeeperSettings.model_validate({"liquidation": {"end_at": "mm"}})
    assert "end_auction" in [a.kind for a in plan_block(inputs(health_im=him), mm)]


def test_plan_settles_expiries_then_holders():
    x = inputs(
        listed_expiries=[1000, 1200, 5000],
        settlement={1000: 3000 * WAD},
        holders_of_settled=np.array([0, 3, 5], dtype=np.int64),
        in_flight=[("settle_positions", ADDR[3])],
    )
    s = KeeperSettings.model_validate(
        {"roles": {"liquidator": False}, "settlement": {"max_accounts_per_block": 2}}
    )
    actions = plan_block(x, s)
    assert [(a.kind, a.args) for a in actions] == [
        ("settle_expiry", (1200,)),
        ("settle_positions", (ADDR[0],)),
    ]


def test_plan_settles_the_largest_perp_funding_first():
    owed = np.array([120.0, -900.0, np.nan, 499.99, 2500.0, -500.0])
    x = inputs(perp_owed=owed, in_flight=[("settle_perp", ADDR[5])])
    s = KeeperSettings.model_validate(
        {"roles": {"liquidator": False}, "settlement": {"max_accounts_per_block": 3}}
    )
    actions = plan_block(x, s)
    # At least 500 USD either way, largest first; the one in flight is skipped within the cap.
    assert [(a.kind, a.args) for a in actions] == [
        ("settle_perp", (ADDR[4],)),
        ("settle_perp", (ADDR[1],)),
    ]
    assert actions[1].reason == "perp funding owed -900.00 USD"
    off = KeeperSettings.model_validate({"roles": {"liquidator": False, "settler": False}})
    assert plan_block(x, off) == []


def test_settings_errors_are_one_line():
    assert parse_keeper(None) == KeeperSettings()
    with pytest.raises(KeeperConfigError, match=r"^f\.yaml: keeper\.tx\.bogus: Extra inputs"):
        parse_keeper({"tx": {"bogus": 1}}, "f.yaml")
    with pytest.raises(KeeperConfigError, match=r"keeper\.tx\.bump_percent: Input should be"):
        parse_keeper({"tx": {"bump_percent": 5}}, "f.yaml")
    with pytest.raises(KeeperConfigError, match="max_priority_fee_gwei must not exceed"):
        parse_keeper({"tx": {"max_fee_gwei": 1, "max_priority_fee_gwei": 2}}, "f.yaml")
    with pytest.raises(KeeperConfigError, match="keeper: expected a mapping"):
        parse_keeper([1], "f.yaml")
    with pytest.raises(KeeperConfigError, match=r"keeper\.roles\.monitor"):
        parse_keeper({"roles": {"monitor": "maybe"}}, "f.yaml")


def test_load_keeper_reads_the_network_file(tmp_path: Path):
    base = tmp_path / "x-local.yaml"
    base.write_text('keeper:\n  dry_run: true\n  tx: {max_fee_gwei: "${FEE:-2}"}\n')
    child = tmp_path / "x-other.yaml"
    child.write_text("extends: x-local.yaml\nkeeper:\n  confirmations: 2\n")
    s = load_keeper(child, env={})
    assert (s.dry_run, s.confirmations, s.tx.max_fee_gwei) == (True, 2, 2.0)
    assert load_keeper(child, env={"FEE": "7"}).tx.max_fee_gwei == 7.0
    assert s.checkpoint_path("base", "local", tmp_path) == tmp_path / ".keeper/base-local.json"
    with pytest.raises(KeeperConfigError, match="no such config file"):
        load_keeper(tmp_path / "missing.yaml")


def test_repository_network_files_validate():
    root = Path(__file__).resolve().parents[3] / "deploy" / "networks"
    for path in sorted(root.glob("*.yaml")):
        load_keeper(
            path,
            env={
                "BASE_SEPOLIA_RPC_URL": "x",
                "ARBITRUM_SEPOLIA_RPC_URL": "x",
                "KAPPA_DEPLOYER": "x",
                "KAPPA_KEEPER": "x",
            },
        )


def test_plan_hedges_splits_the_due_accounts_across_pools():
    from keeper.hedging import plan_hedge
    from keeper.runtime.planner import Pools, plan_hedges

    pools = Pools(
        ["0xp5", "0xp30"], [5, 30], [2000 * WAD, 1000 * WAD], [6_000_000 * 10**6, 3_000_000 * 10**6]
    )
    # Row 0: short 3 deltas on a gross of 10 (ratio 0.3 > 0.02): buy 3 units with cash.
    # Row 1: inside the band. Row 2: long 2 deltas holding 1.5: sell what it holds (clipped).
    net = np.array([-3.0, 0.1, 2.0])
    gross = np.array([10.0, 10.0, 10.0])
    under = np.array([0.0, 0.0, 1.5])
    s = KeeperSettings.model_validate({"roles": {"hedger": True}, "hedge": {"band": 0.02}})
    actions = plan_hedges(
        ADDR[:3], [0, 1, 2], net, gross, under, pools, "0xusd", "0xweth", now=1000, settings=s
    )
    assert [a.account for a in actions] == [ADDR[0], ADDR[2]]
    buy = plan_hedge(
        -3.0, 0.0, list(pools.reserves_underlying), list(pools.reserves_cash), [5, 30], 18, 0.005
    )
    assert buy is not None and buy.buy_underlying
    legs = [(p, x) for p, x in zip(pools.addresses, buy.legs, strict=True) if x > 0]
    assert actions[0].kind == "swap" and actions[0].target == "engine"
    assert actions[0].args == (
        ADDR[0],
        "0xusd",
        [p for p, _ in legs],
        [x for _, x in legs],
        buy.min_out,
        1600,
    )
    sell = actions[1]
    assert sell.args[1] == "0xweth" and sum(sell.args[3]) == 15 * 10**17
    assert sell.reason.endswith("(clipped)")
    busy = plan_hedges(
        ADDR[:3],
        [0, 1, 2],
        net,
        gross,
        under,
        pools,
        "0xusd",
        "0xweth",
        now=1000,
        settings=s,
        in_flight=[("swap", ADDR[0])],
    )
    assert [a.account for a in busy] == [ADDR[2]]


def test_hedges_in_one_block_are_planned_on_the_reserves_the_earlier_ones_leave():
    from keeper.hedging import plan_hedge
    from keeper.routing import amount_out_exact
    from keeper.runtime.planner import Pools, plan_hedges

    ru, rc = [2000 * WAD, 1000 * WAD], [6_000_000 * 10**6, 3_000_000 * 10**6]
    pools = Pools(["0xp5", "0xp30"], [5, 30], ru, rc)
    net, gross, under = np.array([-3.0, -2.0]), np.array([10.0, 10.0]), np.zeros(2)
    s = KeeperSettings.model_validate({"roles": {"hedger": True}, "hedge": {"band": 0.02}})
    first, second = plan_hedges(
        ADDR[:2], [0, 1], net, gross, under, pools, "0xusd", "0xweth", now=1000, settings=s
    )
    a = plan_hedge(-3.0, 0.0, ru, rc, [5, 30], 18, 0.005)
    assert a is not None and first.args[4] == a.min_out
    # The pools after the first swap, as the pool contract computes them.
    ru2, rc2 = list(ru), list(rc)
    for j, (leg, fee) in enumerate(zip(a.legs, [5, 30], strict=True)):
        out = amount_out_exact(leg, rc2[j], ru2[j], fee)
        rc2[j], ru2[j] = rc2[j] + leg, ru2[j] - out
    b = plan_hedge(-2.0, 0.0, ru2, rc2, [5, 30], 18, 0.005)
    stale = plan_hedge(-2.0, 0.0, ru, rc, [5, 30], 18, 0.005)
    assert b is not None and stale is not None
    assert second.args[3] == [x for x in b.legs if x > 0] and second.args[4] == b.min_out
    assert sum(b.legs) > sum(stale.legs)  # the second buys the same units at a higher price


def _perp_quote(maker: str, is_buy: bool, size: float, price: float) -> SignedQuote:
    order = {
        "maker": maker,
        "series_id": PERP_ID,
        "is_buy": is_buy,
        "size": int(size * WAD),
        "price": int(price * WAD),
        "nonce": 1,
        "deadline": 2000,
    }
    return SignedQuote(order, b"\x01" * 65)


def test_plan_hedges_takes_the_perp_quote_when_it_is_cheaper():
    from keeper.hedging import pool_hedge_cost
    from keeper.runtime.planner import PerpVenue, Pools, plan_hedges

    # Shallow pools: buying 3 units costs tens of USD of impact and fees.
    pools = Pools(["0xp30"], [30], [100 * WAD], [300_000 * 10**6])
    net, gross, under = np.array([-3.0, -3.0]), np.array([10.0, 10.0]), np.array([0.0, 0.0])
    s = KeeperSettings.model_validate({"roles": {"hedger": True}, "hedge": {"band": 0.02}})
    pool_cost = float(pool_hedge_cost(-3.0, 3000.0, [100 * WAD], [300_000 * 10**6], [30]))
    # An ask 1 USD over the index with no funding costs 3 USD: cheaper. The quote holds 4 units,
    # so the second account's hedge (3 more) no longer fits and goes to the pools.
    ask = _perp_quote("0xlp", False, 4.0, 3001.0)
    venue = PerpVenue([ask], spot=3000.0, funding_rate=0.0, band=0.02)
    first, second = plan_hedges(
        ADDR[:2], [0, 1], net, gross, under, pools, "0xusd", "0xweth", 1000, s, perp=venue
    )
    assert pool_cost > 3.0
    assert first.kind == "fill" and first.target == "engine" and first.account == ADDR[0]
    assert first.args == (as_tuple(ask.order), ask.signature, 3 * WAD, ADDR[0])
    assert "buy 3 perp at 3001.00 (cost 3.00 USD" in first.reason
    assert second.kind == "swap" and second.account == ADDR[1]
    # Funding paid by longs at 1% an hour over the 8 hours held (720 USD) makes the pools
    # cheaper.
    assert pool_cost < 720.0
    costly = PerpVenue([ask], spot=3000.0, funding_rate=0.01, band=0.02)
    kinds = [
        a.kind
        for a in plan_hedges(
            ADDR[:1], [0], net, gross, under, pools, "0xusd", "0xweth", 1000, s, perp=costly
        )
    ]
    assert kinds == ["swap"]


def test_perp_quotes_parse_with_one_line_errors(tmp_path: Path):
    from keeper.runtime.perp_quotes import QuoteError, live, load_quotes

    good = {
        "order": {
            "maker": "0xAb", "series_id": str(PERP_ID), "is_buy": True, "size": 10**18,
            "price": 3000 * 10**18, "nonce": 1, "deadline": 500,
        },
        "signature": "0x" + "11" * 65,
    }  # fmt: skip
    path = tmp_path / "q.json"
    assert load_quotes(path) == []
    path.write_text(json.dumps([good]))
    (q,) = load_quotes(path)
    assert q.order["series_id"] == PERP_ID and q.is_bid and len(q.signature) == 65
    assert live([q], 500, set()) == [q] and live([q], 501, set()) == []
    assert live([q], 100, {"0xab"}) == []
    for bad, message in (
        ({**good, "signature": "0x11"}, "expected 65 bytes"),
        ({**good, "order": {**good["order"], "series_id": 7}}, "not the perp's id"),
        ({**good, "order": {**good["order"], "size": -1}}, "must be >= 0"),
        ({"order": {"maker": "0x1"}}, "missing series_id"),
    ):
        path.write_text(json.dumps([bad]))
        with pytest.raises(QuoteError, match=message):
            load_quotes(path)
    path.write_text("{")
    with pytest.raises(QuoteError, match="not JSON"):
        load_quotes(path)
