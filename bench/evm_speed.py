"""EVM speed: the same contract workload on titanoboa (py-evm) and on the revm harness.

Workloads (the stateful fuzzer's unit of work is a contract call; margin checks dominate):
- `price`: PRICE_CALLS calls of PricingLens.price (Black-76, ~5k execution gas each), cycling
  through a few strikes so no call is a repeat.
- `health`: HEALTH_CALLS calls of RiskCalculator.health on a 16-position portfolio (maintenance
  mode, the protocol's grid: 7 spot points x vol shocks), about a million gas each.

For each engine and workload: calls/s (wall clock, best of REPEATS, after one warm-up call) and
gas/s. Gas is execution gas: titanoboa's computation gas, and revm's `gas_used` minus the
intrinsic 21,000 + calldata cost (the two agree on these pure calls; both are written). Results
from both engines are checked equal. `speedup` = revm calls/s / titanoboa calls/s.

Writes bench/results/evm_speed.json. Run: `.venv/bin/python -m bench.evm_speed`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

from bench.common import load, table, write_result
from tests.harness.revm import Chain

WAD = 10**18
DAY = 86_400
PRICE_CALLS = 200
HEALTH_CALLS = 20
REPEATS = 3
COMMAND = ".venv/bin/python -m bench.evm_speed"


def _protocol() -> Any:
    import tests.protocol as protocol

    return protocol


def price_args() -> list[tuple[int, int, int, int, bool]]:
    out = []
    for i in range(PRICE_CALLS):
        strike = (2000 + 10 * (i % 100)) * WAD
        tau = WAD * (1 + i % 12) // 12
        out.append((3000 * WAD, strike, tau, WAD * (3 + i % 8) // 10, i % 2 == 0))
    return out


def health_args() -> list[tuple[Any, ...]]:
    """HEALTH_CALLS (portfolio, market, mode, grid) with 16 positions each: 4 expiries x 4
    strikes, calls and puts, long and short, sizes varying per call."""
    p = _protocol()
    from tests import risk_inputs

    now = p.START
    out = []
    for k in range(HEALTH_CALLS):
        positions = []
        for j in range(16):
            expiry = now + (7 + 14 * (j // 4)) * DAY
            strike = (2600 + 200 * (j % 4) + 10 * k) * WAD
            size = (1 + (j + k) % 5) * WAD * (1 if j % 3 else -1)
            sigma = WAD * (6 + j % 4) // 10
            positions.append(risk_inputs.position(strike, expiry, j % 2 == 0, size, sigma, 0, now))
        portfolio = risk_inputs.portfolio(200_000 * WAD, (k % 3) * WAD, positions)
        market = risk_inputs.market((3000 + k) * WAD, WAD, now, WAD * 8 // 10)
        out.append((portfolio, market, p.MM, p.GRID))
    return out


def intrinsic_gas(calldata: bytes) -> int:
    zeros = calldata.count(0)
    return 21_000 + 4 * zeros + 16 * (len(calldata) - zeros)


def _best(fn: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_boa(path: str, fn: str, calls: list[tuple[Any, ...]]) -> dict[str, Any]:
    contract = load(path)
    method = getattr(contract, fn)
    method(*calls[0])  # warm-up
    results = []
    gas = 0
    for args in calls:
        results.append(method(*args))
        gas += int(contract._computation.get_gas_used())

    def work() -> None:
        for args in calls:
            method(*args)

    seconds = _best(work)
    return {"seconds": seconds, "gas": gas, "results": results}


def run_revm(path: str, fn: str, calls: list[tuple[Any, ...]]) -> dict[str, Any]:
    chain = Chain()
    contract = chain.deploy(path)
    method = getattr(contract, fn)
    method(*calls[0])  # warm-up
    results = []
    gas = 0
    for args in calls:
        results.append(method(*args))
        gas += chain.gas_used - intrinsic_gas(method.calldata(*args))

    def work() -> None:
        for args in calls:
            method(*args)

    seconds = _best(work)
    return {"seconds": seconds, "gas": gas, "results": results}


def _norm(value: Any) -> Any:
    """Compare results across engines: titanoboa returns structs as named tuples."""
    if isinstance(value, tuple | list):
        return tuple(_norm(v) for v in value)
    return value


def main() -> int:
    workloads = {
        "price": ("tests/contracts/PricingLens.vy", "price", price_args()),
        "health": ("contracts/margin/RiskCalculator.vy", "health", health_args()),
    }
    data: dict[str, Any] = {
        "load_average": list(os.getloadavg()),
        "versions": {
            "titanoboa": metadata.version("titanoboa"),
            "pyrevm": metadata.version("pyrevm"),
            "vyper": metadata.version("vyper"),
        },
        "repeats": REPEATS,
        "workloads": {},
    }
    rows = []
    for name, (path, fn, calls) in workloads.items():
        boa_run = run_boa(path, fn, calls)
        revm_run = run_revm(path, fn, calls)
        same = _norm(boa_run["results"]) == _norm(revm_run["results"])
        entry: dict[str, Any] = {"contract": path, "function": fn, "calls": len(calls)}
        for engine, run in (("titanoboa", boa_run), ("revm", revm_run)):
            entry[engine] = {
                "seconds": round(run["seconds"], 6),
                "calls_per_s": round(len(calls) / run["seconds"], 1),
                "gas_per_s": round(run["gas"] / run["seconds"]),
                "execution_gas_per_call": run["gas"] // len(calls),
            }
        entry["speedup"] = round(
            entry["revm"]["calls_per_s"] / entry["titanoboa"]["calls_per_s"], 1
        )
        entry["results_equal"] = same
        data["workloads"][name] = entry
        for engine in ("titanoboa", "revm"):
            e = entry[engine]
            rows.append(
                [
                    f"{name} ({engine})",
                    len(calls),
                    e["calls_per_s"],
                    e["gas_per_s"] / 1e6,
                    e["execution_gas_per_call"],
                    entry["speedup"] if engine == "revm" else None,
                ]
            )
        if not same:
            print(f"warning: {name}: titanoboa and revm results differ", file=sys.stderr)
    print(table(["workload", "calls", "calls/s", "Mgas/s", "gas/call", "speedup"], rows))
    path = write_result("evm_speed", data, COMMAND)
    print(f"wrote {path}")
    return 0 if all(w["results_equal"] for w in data["workloads"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
