"""Render bench/results/*.json as the README's results table (between the results markers).

`python -m bench.report` rewrites the block in README.md; `make bench` calls it last.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _load(name: str) -> dict[str, Any] | None:
    path = ROOT / "bench" / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def render() -> str:
    out: list[str] = []
    math = _load("math")
    if math:
        out += [
            f"Math library (`{math['command']}`, commit {math['commit']}): gas of the internal "
            "call (median over 400 inputs) and worst error against 60-digit mpmath as a "
            "fraction of the goal tolerance.",
            "",
            "| function | gas (median) | gas goal | anchor | anchor gas | ours / anchor "
            "| max error / goal | error goal |",
            "|---|---:|---:|---|---:|---:|---:|---|",
        ]
        for name, r in math["functions"].items():
            out.append(
                f"| `{name}` | {_fmt(r['gas_median'])} | {_fmt(r['gas_goal'])} | "
                f"{_fmt(r['anchor'])} | {_fmt(r['anchor_gas'])} | "
                f"{_fmt(r['ratio_vs_anchor'])} | {_fmt(r['max_error_vs_goal'])} | "
                f"{r['error_goal']} |"
            )
        out.append("")
    gas = _load("gas")
    if gas:
        out += [
            f"Protocol gas (`{gas['command']}`, commit {gas['commit']}): execution gas of one "
            "call, cold storage.",
            "",
            "| action | gas | goal | meets goal |",
            "|---|---:|---:|---|",
        ]
        for key, r in gas["gas"].items():
            out.append(
                f"| `{key}` | {_fmt(r['gas'])} | {_fmt(r['goal'])} | {_fmt(r['meets_goal'])} |"
            )
        out.append("")
    for name in ("greeks", "margin_mirror", "routing", "fuzz", "mutation"):
        data = _load(name)
        if not data:
            continue
        scalars = {
            k: v
            for k, v in data.items()
            if isinstance(v, int | float | str | None)
            and k not in ("command", "measured_at", "commit", "machine")
        }
        out += [
            f"{name.capitalize()} (`{data.get('command', 'make bench')}`, commit "
            f"{data.get('commit', '?')}):",
            "",
            "| key | value |",
            "|---|---:|",
        ]
        out += [f"| `{k}` | {_fmt(v)} |" for k, v in scalars.items()]
        out.append("")
    speed = _load("evm_speed")
    if speed:
        out += [
            f"In-process EVMs (`{speed['command']}`, commit {speed['commit']}): the same calls "
            "on titanoboa (py-evm) and the revm harness (tests/harness/revm.py).",
            "",
            "| workload | titanoboa calls/s | revm calls/s | titanoboa gas/s | revm gas/s | "
            "revm / titanoboa |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for w in speed["workloads"].values():
            t, r = w["titanoboa"], w["revm"]
            out.append(
                f"| `{w['function']}` x{w['calls']} | {_fmt(t['calls_per_s'])} | "
                f"{_fmt(r['calls_per_s'])} | {_fmt(t['gas_per_s'])} | "
                f"{_fmt(r['gas_per_s'])} | {_fmt(w['speedup'])} |"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit("README.md has no results markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{render()}{END}{tail}")
    print("README.md results table refreshed")


if __name__ == "__main__":
    main()
