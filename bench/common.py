"""Shared plumbing of the benchmarks: loading contracts, execution gas, writing results, tables."""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boa

from tests.conftest import new_transaction

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def load(path: str, *args: object):
    """Compile and deploy a Vyper source (path relative to the repository root) with titanoboa."""
    boa.interpret.set_search_paths([str(ROOT)])
    return boa.load(str(ROOT / path), *args)


def execution_gas(contract, fn: str, *args: object, **kwargs: object) -> int:
    """Execution gas of `contract.fn(*args)` (the call frame, without the 21,000 intrinsic gas or
    calldata), priced as the first call of a new transaction (cold accounts and slots)."""
    new_transaction()
    getattr(contract, fn)(*args, **kwargs)
    return int(contract._computation.get_gas_used())


def _commit() -> str:
    """The short hash of HEAD, with "-dirty" when tracked files other than the results and the
    README (which benches rewrite) differ from it: a figure is only as reproducible as its tree."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
             ":!bench/results", ":!README.md"],
            cwd=ROOT, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
    except OSError:
        return "unknown"
    if not head:
        return "unknown"
    return f"{head}-dirty" if changed else head


def write_result(name: str, data: dict[str, Any], command: str) -> Path:
    """Write bench/results/<name>.json with the data, how it was made and the commit it was
    measured at."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": command,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _commit(),
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        **data,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, columns padded to fit."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
