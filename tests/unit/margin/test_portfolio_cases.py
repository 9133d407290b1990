"""Worked portfolios (tests/cases/portfolios/*.json) on the engine, the mirror and the reference.

Each case is data: vol entries, a deposit, trades with a dealer (options, or the perp), and
optionally a move past an expiry (a new spot, the expiry settled or not; the perp's funding
accrues meanwhile). The test plays it on the contract (the test
protocol of tests/protocol.py, spot 3,000 from three agreeing feeds), builds the same account
and market as plain inputs for keeper/margin.py and for the scalar mpmath reference of
docs/margin_model.md (tests/margin_reference.py), and checks MtM, H_IM, H_MM and the witnesses
of all three against each other: the contract and the mirror each within 1e-9 relative +
1e-6 USD of the reference, the contract's witnesses exactly the reference's (the mirror's too
unless two scenarios tie within that tolerance), and a case's `expect` figures where it gives
them. The folder's README says how to write a case.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import boa
import numpy as np
import pytest

from keeper import margin as km
from keeper.series import PERP_ID
from tests import protocol as P  # noqa: N812
from tests.conftest import ROOT
from tests.deployment import MARGIN_PARAMS, VOL_PARAMS
from tests.margin_reference import reference

WAD = 10**18
CASES = sorted((ROOT / "tests" / "cases" / "portfolios").glob("*.json"))
REL, ABS = 1e-9, 1e-6
PARAMS = MARGIN_PARAMS

pytestmark = pytest.mark.usefixtures("isolate")


def wad(x: Any) -> int:
    return int(Decimal(str(x)) * WAD)


@pytest.fixture(scope="module")
def dealer(proto):
    maker = P.Maker.new("dealer")
    proto.fund(maker.address, usd=10_000_000, weth=1_000)
    return maker


def play(p: P.Protocol, dealer: P.Maker, name: str, case: dict) -> tuple[str, km.Market, Any]:
    """Play `case` on chain; return the account and the market and portfolio it ends with."""
    expiries = [P.expiry_in(e["days"]) for e in case["expiries"]]
    for e, entry in zip(expiries, case["expiries"], strict=True):
        p.vol.update(e, wad(entry["atm"]), wad(entry["skew"]))
    account = boa.env.generate_address(name)
    p.fund(account, usd=case["deposit"]["usd"], weth=case["deposit"]["weth"])
    listed: dict[tuple[int, int, bool], int] = {}
    cash = wad(case["deposit"]["usd"])
    for t in case["trades"]:
        boa.env.time_travel(seconds=t.get("wait", 0))
        if t.get("perp"):
            # The buyer pays the seller |size| (price - index), the magnitude rounded up
            # (PerpBook.trade); a new position settles for nothing.
            size, price, index = wad(abs(t["size"])), wad(t["price"]), wad(3000)
            order = dealer.order(PERP_ID, t["size"] < 0, size, price)
            p.engine.fill(P.as_tuple(order), dealer.sign(p, order), size, account, sender=account)
            payment = -(-size * abs(price - index) // WAD) * (1 if price >= index else -1)
            cash += -payment if t["size"] > 0 else payment
            continue
        key = (expiries[t["expiry"]], wad(t["strike"]), bool(t["call"]))
        if key not in listed:
            listed[key] = p.engine.list_series(*key)
        size, price = wad(abs(t["size"])), wad(t["price"])
        order = dealer.order(listed[key], t["size"] < 0, size, price)
        p.engine.fill(P.as_tuple(order), dealer.sign(p, order), size, account, sender=account)
        cash -= size * price // WAD if t["size"] > 0 else -(size * price // WAD)
    assert p.engine.cash(account) == cash  # fills move exactly size x price (the perp's payment)
    spot, settlement = 3000.0, [math.nan] * len(expiries)
    then = case.get("then")
    if then:
        expiry = expiries[then["past_expiry"]]
        boa.env.time_travel(seconds=expiry - boa.env.timestamp + then["seconds"])
        spot = float(then["spot"])
        p.set_spot(spot)
        if then["settle"]:
            p.settle_expiry(expiry)
            settlement[then["past_expiry"]] = p.engine.settlement_price(expiry) / WAD
    trades = [t for t in case["trades"] if not t.get("perp")]
    # The perp as the engine reads it at the end: (q_f, P_f, Phi_f), funding accrued to now.
    perp = [x / WAD for x in p.perp_book.margin_terms(account, wad(spot))]
    vol_min, vol_max = VOL_PARAMS[0] / WAD, VOL_PARAMS[1] / WAD
    market = km.Market(
        spot=spot,
        confidence=1.0,
        now=boa.env.timestamp,
        expiries=expiries,
        atm=[float(e["atm"]) for e in case["expiries"]],
        skew=[float(e["skew"]) for e in case["expiries"]],
        settlement=settlement,
        vol_min=vol_min,
        vol_max=vol_max,
    )
    slots = max(len(trades), 1)
    portfolio = km.Portfolios(
        np.array([cash / WAD]),
        np.array([float(case["deposit"]["weth"])]),
        np.array([[float(t["strike"]) for t in trades] + [1.0] * (slots - len(trades))]),
        np.array([[expiries[t["expiry"]] for t in trades] + [expiries[0]] * (slots - len(trades))]),
        np.array([[bool(t["call"]) for t in trades] + [False] * (slots - len(trades))]),
        np.array([[float(t["size"]) for t in trades] + [0.0] * (slots - len(trades))]),
        *(np.array([x]) for x in perp),
    )
    return account, market, portfolio


def close(got: float, want: Any) -> bool:
    return abs(got - float(want)) <= REL * abs(float(want)) + ABS


@pytest.mark.parametrize("path", CASES, ids=[c.stem for c in CASES])
def test_portfolio_case(proto, dealer, path: Path):
    case = json.loads(path.read_text())
    account, market, portfolio = play(proto, dealer, path.stem, case)
    ref = reference(portfolio, 0, market, PARAMS)
    want = {"mtm": ref["mtm"], "h_im": ref["im"]["health"], "h_mm": ref["mm"]["health"]}
    margin = proto.engine.margin(account)
    chain = {key: x / WAD for key, x in zip(("mtm", "h_im", "h_mm"), margin, strict=True)}
    mirror = km.evaluate(portfolio, market, PARAMS)
    off_chain = {"mtm": mirror.mtm[0], "h_im": mirror.health_im[0], "h_mm": mirror.health_mm[0]}
    for key, value in want.items():
        assert close(chain[key], value), ("contract", key, chain[key], float(value))
        assert close(off_chain[key], value), ("mirror", key, off_chain[key], float(value))
    # The model's order: the IM check covers MM's scenarios, and MM's flat scenario is MtM
    # less the haircut and the contingency.
    assert chain["h_im"] <= chain["h_mm"] <= chain["mtm"] + ABS
    for tag, is_im in (("im", True), ("mm", False)):
        witness = ref[tag]["witness"]
        assert proto.engine.health(account, is_im)[1] == witness, tag
        ordered = sorted(ref[tag]["values"])
        if len(ordered) < 2 or ordered[1] - ordered[0] > REL * abs(ordered[0]) + ABS:
            assert getattr(mirror, f"witness_{tag}")[0] == witness, tag
    for key, value in case.get("expect", {}).items():
        if key.startswith("witness_"):
            assert proto.engine.health(account, key == "witness_im")[1] == value, key
        else:
            assert close(chain[key], Decimal(value)), (key, chain[key], value)
