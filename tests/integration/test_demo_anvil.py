"""`make demo` end to end, short version: ape starts anvil as a local Base node, the demo
deploys with the deploy script's code, seeds a dozen accounts (perp traders and a perp
liquidity account among them), starts the keeper bot as its own process and crashes the market
over 16 steps; the bot keeps it safe (auctions, bids, hedges through the router, perp
settlements, vol updates), then both stop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, child_env, require_anvil

pytestmark = pytest.mark.integration

REPORT_KEYS = {
    "network",
    "accounts",
    "steps",
    "liquidations",
    "auctions_started",
    "bad_debt",
    "insurance_fund_used",
    "hedges",
    "max_abs_delta_after_hedge",
    "gas",
    "keeper_reaction_blocks_max",
    "keeper_reaction_ms_p50",
    "keeper",
    "funding_paid",
    "funding_received",
    "perp_open_interest",
    "perp_fills",
}


def test_short_crash_demo_on_anvil(tmp_path: Path):
    require_anvil()
    ape = Path(sys.executable).parent / "ape"
    proc = subprocess.run(
        [
            str(ape),
            "run",
            "demo",
            "--network",
            "base:local:foundry",
            "--short",
            "--no-charts",
            "--report-dir",
            str(tmp_path / "reports"),
            "--records-dir",
            str(tmp_path / "deployments"),
            "--keeper-dir",
            str(tmp_path / "keeper"),
        ],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    report = json.loads((tmp_path / "reports" / "demo.json").read_text())
    assert set(report) >= REPORT_KEYS
    assert report["network"] == "base:local:foundry"
    assert report["accounts"] >= 10
    assert report["steps"] == 16
    assert report["auctions_started"] >= 1
    assert report["liquidations"] >= 1
    assert report["hedges"] >= 1
    assert report["bad_debt"] == 0
    assert report["bids_failed"] == 0
    assert report["max_abs_delta_after_hedge"] <= 0.05
    for kind in ("fill", "hedge_swap", "start_auction", "bid", "feed_update"):
        assert report["gas"][kind]["count"] >= 1 and report["gas"][kind]["median"] > 0
    # Every hedge went through the router across pools, and left the delta inside the band.
    assert all(h["ratio_after"] <= 0.05 for h in report["hedge_log"])
    assert any(h["legs"] >= 2 for h in report["hedge_log"])
    assert "Stopping 'anvil' process" in out or "block  16/16" in out
    # Every auction, bid and hedge is the bot's: its mined transactions account for all of them.
    bot = report["keeper"]
    assert bot["exit_code"] == 0 and bot["faults"] == []
    assert bot["by_kind"]["start_auction"] == report["auctions_started"]
    assert bot["by_kind"]["bid"] == report["liquidations"]
    assert bot["by_kind"]["swap"] == report["hedges"] == report["gas"]["hedge_swap"]["count"]
    assert bot["reverted"] == 0
    # The vol path reached the chain through the bot's vol feeder: every step moves ATM vol.
    assert report["gas"]["vol_update"]["count"] >= report["steps"]
    # Every account that turned liquidatable had its auction started by the next block or the
    # one after, and none was left waiting.
    reactions = report["reaction_log"]
    assert reactions and report["keeper_reactions"] == sum(
        r["blocks"] is not None for r in reactions
    )
    assert report["keeper_missed"] == 0
    assert 1 <= report["keeper_reaction_blocks_max"] <= 2
    assert all(r["blocks"] is None or 1 <= r["blocks"] <= 2 for r in reactions)
    assert report["keeper_reaction_ms_p50"] > 0
    # The bot's final metrics, scraped from its Prometheus endpoint, agree with the chain.
    metrics = bot["metrics"]
    assert metrics["sent_start_auction"] == report["auctions_started"]
    assert metrics["sent_bid"] == report["liquidations"]
    assert metrics["accounts"] >= report["accounts"] and metrics["liquidatable"] == 0
    assert metrics["block"] == bot["health"]["last_block"] == bot["health"]["head"]
    assert bot["health"]["status"] == "ok"
    # Interest-bearing cash: the crash spans chain time, the borrower holds the pool at its
    # target utilization (under the cap), and borrowers' interest goes 90% to suppliers and 10%
    # to the reserve (reserve_factor 0.1). The demo counts a step's interest on its opening
    # shares, so the split holds to 1%.
    assert report["chain_seconds"] >= report["steps"] * report["settings"]["block_seconds"]
    interest = report["interest"]
    assert 0.6 <= interest["max_utilization"] <= 0.9
    paid = interest["paid_by_borrowers"]
    assert paid > 0
    assert interest["earned_by_suppliers"] == pytest.approx(0.9 * paid, rel=0.01)
    assert interest["reserve_uncollected"] == pytest.approx(0.1 * paid, rel=0.01)
    # The perp: traders' fills against the liquidity account, the market makers' perp hedges,
    # funding settled by the bot's settle_perp, perp holders liquidated by moves.
    settings = report["settings"]
    assert report["perp_fills"] == settings["perp_traders"] + report["perp_hedges"]
    assert report["perp_hedges"] >= 1 and report["perp_open_interest"] > 0
    # The market makers' perp fills of the run settle at their block's index (the feeds'
    # updates are mined before them).
    assert report["perp_fills_at_block_index"] == report["perp_fills_during_run"]
    assert report["perp_liquidation_moves"] >= 1
    assert report["perp_settle_txs"] >= 1
    assert bot["by_kind"]["settle_perp"] == report["perp_settle_txs"]
    assert report["perp_settlements"] >= report["perp_settle_txs"]
    # Funding is zero-sum up to the protocol's roundings, which only take from accounts: each
    # touch (a settled side of a fill, settlement or move) and each open position's funding
    # owed (rounded up) keeps less than 1 wei, so paid - received is in [0, touches) wei.
    funding = report["funding"]
    assert report["funding_paid"] > 0 and report["funding_received"] > 0
    assert report["funding_paid"] >= report["funding_received"]
    assert 0 <= funding["gap_wei"] < funding["touches"]
    assert funding["paid"] == pytest.approx(
        funding["settled_paid"] + funding["unsettled_paid"], rel=1e-12
    )
    assert sum(funding["by_role"].values()) == pytest.approx(0.0, abs=1e-9)
    # The premium path stays within the band, and the funding rate within its cap, every step.
    band, cap = report["perp_band"], report["perp_max_rate"]
    for step in report["step_log"]:
        assert abs(step["perp_mark_premium"]) <= band + 1e-12
        assert abs(step["perp_funding_rate"]) <= cap + 1e-12
        assert step["perp_open_interest"] > 0
    assert any(step["perp_mark_premium"] != 0 for step in report["step_log"])
