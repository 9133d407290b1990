"""scripts/deploy.py's code end to end: deploy twice on one node (the second run deploys and
sends nothing), a dry run, and the same on ape's embedded eth-tester chain.

Each case runs in a child Python process that connects ape to the network (ape-foundry starts
and stops its own anvil; eth-tester is in-process), so the test session never holds a node.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from keeper.perp import WAD, PerpParams
from tests.integration.conftest import require_anvil, run_driver

pytestmark = pytest.mark.integration

DRIVER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from ape import networks
    from ape.logging import logger
    logger.set_level("ERROR")
    from kappa_ops.deployer import deploy_from_files

    network, records = sys.argv[1], Path(sys.argv[2])
    POOLS = ("pool_5", "pool_30", "pool_100")
    out = {}
    with networks.parse_network_choice(network):
        quiet = lambda line: None
        first = deploy_from_files(records_dir=records, log=quiet)
        second = deploy_from_files(records_dir=records, log=quiet)
        lines = []
        dry = deploy_from_files(records_dir=records, dry_run=True, log=lines.append)
        engine = first["engine"]
        order_book, perp_book = first["order_book"], first["perp_book"]
        out = {
            "chain_id": first.chain_id,
            "first_deployed": first.deployed,
            "first_calls": len(first.calls_sent),
            "second_deployed": second.deployed,
            "second_calls": second.calls_sent,
            "dry_lines": [l for l in lines if l.startswith("would")],
            "addresses_equal": {n: first.address(n) == second.address(n) for n in first.contracts},
            "router_wired": engine.router() == first.address("router"),
            "liquidator_wired": engine.liquidator() == first.address("liquidator"),
            "order_book_wired": engine.order_book() == first.address("order_book"),
            "perp_book_wired": engine.perp_book() == first.address("perp_book"),
            "books_engine": [b.ENGINE() == engine.address for b in (order_book, perp_book)],
            # Orders are signed for the order book: it is the EIP-712 domain's contract.
            "domain_contract": order_book.eip712Domain()[4] == first.address("order_book"),
            "perp_listed": bool(perp_book.listed()),
            "perp_params": int(perp_book.market().params),
            "venues": [bool(engine.is_venue(first.address(p))) for p in POOLS],
            "pool_supply": [int(first[p].totalSupply()) for p in POOLS],
            "oracle_price": int(first["oracle"].price()[0]),
            "risk_increase_allowed": bool(first["oracle"].risk_increase_allowed()),
        }
    print("RESULT " + json.dumps(out))
    """
)


def _run(network: str, records: Path, timeout: int) -> dict:
    return run_driver(DRIVER, network, str(records), timeout=timeout)


def _check(result: dict, records: Path) -> None:
    assert len(result["first_deployed"]) == 17
    assert {"order_book", "perp_book"} <= set(result["first_deployed"])
    assert result["first_calls"] > 0
    # The second run finds everything recorded and on chain, and every wiring check holding.
    assert result["second_deployed"] == []
    assert result["second_calls"] == []
    assert result["dry_lines"] == []
    assert all(result["addresses_equal"].values())
    assert result["router_wired"] and result["liquidator_wired"]
    assert result["order_book_wired"] and result["perp_book_wired"]
    assert result["books_engine"] == [True, True]
    assert result["domain_contract"]
    assert result["perp_listed"]
    assert result["perp_params"] == PerpParams(WAD // 50, 1800, 8, WAD // 2000).pack()
    assert result["venues"] == [True, True, True]
    assert all(s > 0 for s in result["pool_supply"])
    assert result["oracle_price"] == 3000 * 10**18
    assert result["risk_increase_allowed"]
    record = json.loads(next(records.glob("*.json")).read_text())
    assert set(record["contracts"]) >= {
        "engine",
        "liquidator",
        "router",
        "pool_5",
        "order_book",
        "perp_book",
    }
    assert record["contracts"]["order_book"]["contract"] == "OrderBook"
    assert record["contracts"]["perp_book"]["contract"] == "PerpBook"
    assert record["contracts"]["perp_book"]["args"] == [record["contracts"]["engine"]["address"]]
    labels = {c["label"] for c in record["calls"]}
    assert {"engine orders book", "engine perps book", "perp listed"} <= labels


def test_deploy_twice_on_anvil(tmp_path: Path):
    require_anvil()
    result = _run("base:local:foundry", tmp_path, timeout=600)
    _check(result, tmp_path)


def test_deploy_twice_on_eth_tester(tmp_path: Path):
    result = _run("ethereum:local:test", tmp_path, timeout=600)
    _check(result, tmp_path)


def test_dry_run_and_mock_refusal_need_no_node(tmp_path: Path):
    """The public-network guard: the local config (mocks) cannot be planned for base:sepolia."""
    from kappa_ops.config import config_path, load_config
    from kappa_ops.plan import Network, PlanError, make_plan

    with pytest.raises(PlanError, match="refusing to deploy mock"):
        make_plan(
            load_config(config_path("base", "local")),
            Network("base", "sepolia", False),
            "0x" + "22" * 20,
        )
