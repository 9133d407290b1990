"""`make demo` end to end, short version: ape starts anvil as a local Base node, the demo
deploys with the deploy script's code, seeds a dozen accounts, crashes the market over 16
blocks and keeps it safe (auctions, bids, hedges through the router), then stops the node."""

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
