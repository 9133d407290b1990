"""`make demo` end to end: ape starts anvil as a local Base node, deploys PricingLens and
prices an option chain on chain; the on-chain prices must match keeper/greeks.py's float64."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = (
        f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{Path(sys.executable).parent}"
        f"{os.pathsep}{env.get('PATH', '')}"
    )
    env.setdefault("VVM_BINARY_PATH", str(ROOT / ".vvm"))
    return env


def test_demo_prices_on_anvil_match_float64_reference():
    env = _env()
    assert shutil.which("anvil", path=env["PATH"]), "anvil missing: run `make setup` first"
    ape = Path(sys.executable).parent / "ape"
    proc = subprocess.run(
        [str(ape), "run", "demo", "--network", "base:local:foundry"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((ROOT / "reports" / "demo.json").read_text())
    assert report["network"] == "base:local:foundry"
    assert len(report["options"]) == 6
    # float64 Black-76 is good to ~1e-15 of F; the contract to ~1e-18.
    assert report["max_price_diff_over_forward"] < 1e-13
    for row in report["options"]:
        for name in ("delta", "gamma", "vega", "theta"):
            got, ref = row["on_chain"][name], row["float64"][name]
            assert abs(got - ref) <= 1e-9 * abs(ref) + 1e-12, (row["option"], name)
    assert "Stopping 'anvil' process" in proc.stdout + proc.stderr
