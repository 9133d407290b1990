"""`make bench`: run every benchmark, then refresh the results table in README.md."""

from __future__ import annotations

import importlib
import sys

# In order; each module exposes main() and writes bench/results/<name>.json.
BENCHMARKS = (
    "bench.math",
    "bench.gas",
    "bench.greeks",
    "bench.margin_mirror",
    "bench.routing",
    "bench.keeper",
    "bench.evm_speed",
    "bench.fuzz",
)


def main() -> int:
    for name in BENCHMARKS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        print(f"\n== {name} ==")
        module.main()
    from bench import report

    report.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
