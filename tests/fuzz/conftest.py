"""The fuzz suite's pytest hooks: a summary line of the steps the stateful machines ran."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.fuzz.stateful.base import STATS

    if STATS["steps"]:
        terminalreporter.write_line(
            f"kappa fuzz: {STATS['steps']:,} steps in {STATS['examples']:,} examples, "
            f"{STATS['fills']:,} fills (largest portfolio {STATS['max_positions']} positions), "
            f"{STATS['perp_fills']:,} perp fills, "
            f"{STATS['health_reads']:,} contract health reads, "
            f"{STATS['mirror_checks']:,} mirror checks"
        )
