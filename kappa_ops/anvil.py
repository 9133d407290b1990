"""A leaner local anvil for long scenarios.

ape-foundry always starts anvil with `--steps-tracing`, which keeps a step-by-step trace (stack
and memory at every opcode) of every transaction in memory, for geth-style debug traces. One
margin check of a 16-position account runs ~10^5 steps, so a scenario of ~1,000 such
transactions grows anvil past 10 GB. The demo needs no step traces (reverts are replayed as
calls for their reason), so `lean_anvil()` drops the flag and keeps only the latest blocks'
transactions in memory. Call it before ape connects (at import time of a script).
"""

from __future__ import annotations

from typing import Any

KEEP_BLOCKS = 256
_PATCHED = "_kappa_lean"


def lean_anvil() -> None:
    """Patch ape-foundry's anvil command line (idempotent); a no-op without ape-foundry."""
    try:
        from ape_foundry.provider import FoundryProvider
    except ImportError:  # pragma: no cover - plugin missing
        return
    if getattr(FoundryProvider.build_command, _PATCHED, False):
        return
    original = FoundryProvider.build_command

    def build_command(self: Any) -> list[str]:
        cmd = [arg for arg in original(self) if arg != "--steps-tracing"]
        return [*cmd, "--transaction-block-keeper", str(KEEP_BLOCKS)]

    setattr(build_command, _PATCHED, True)
    FoundryProvider.build_command = build_command  # type: ignore[method-assign]
