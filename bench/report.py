"""Render bench/results/*.json (and the crash demo's reports/demo.json) as the README's results
block, between the markers START and END below.

`.venv/bin/python -m bench.report` rewrites the block in README.md; `make bench` calls it last.
Every figure the README shows comes from here: prose elsewhere names the file, not the number.
"""

from __future__ import annotations

import json
import subprocess
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
            "| action | gas | goal | meets goal | action | gas | goal | meets goal |",
            "|---|---:|---:|---|---|---:|---:|---|",
        ]
        cells = [
            f"`{key}` | {_fmt(r['gas'])} | {_fmt(r['goal'])} | {_fmt(r['meets_goal'])}"
            for key, r in gas["gas"].items()
        ]
        half = (len(cells) + 1) // 2
        right_cells = [*cells[half:], "| | |"][:half]
        for left, right in zip(cells[:half], right_cells, strict=True):
            out.append(f"| {left} | {right} |")
        out.append("")
    greeks = _load("greeks")
    if greeks and "rounds" in greeks:
        out += _greeks(greeks)
    mirror = _load("margin_mirror")
    if mirror and "cold_full_ms" in mirror:
        out += _margin_mirror(mirror)
    routing = _load("routing")
    if routing:
        out += _row(
            "Routing: the closed-form split against greedy 5% steps, the best single pool and a "
            "generic KKT solver (basis points of output)",
            routing,
            ("cases", "worst_vs_greedy_bps", "median_vs_greedy_bps", "median_vs_single_pool_bps",
             "optimality_gap_max", "mean_active_pools"),
        )  # fmt: skip
    fuzz = _load("fuzz")
    if fuzz:
        out += _row(
            f"Fuzz: the main stateful machine on {fuzz.get('engine', '?')}, {fuzz.get('timing')}",
            fuzz,
            ("steps_per_s", "steps_per_cpu_s", "goal_steps_per_s", "anchor", "anchor_value",
             "ratio_vs_anchor", "invariants", "steps", "examples", "setup_seconds"),
        )  # fmt: skip
    keeper = _load("keeper")
    if keeper:
        out += _keeper(keeper)
    drills = _load("keeper_drills")
    if drills:
        out += _drills(drills)
    mutation = [(n, d) for n in MUTATION_RUNS if (d := _load(n))]
    if mutation:
        out += _mutation(mutation)
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
    demo = _demo()
    if demo:
        out += demo
    return "\n".join(out).rstrip() + "\n"


def _row(title: str, data: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """One result as a one-row table of the given keys (the JSON file has the rest)."""
    shown = [k for k in keys if k in data]
    return [
        f"{title} (`{data.get('command', 'make bench')}`, commit {data.get('commit', '?')}):",
        "",
        "| " + " | ".join(f"`{k}`" for k in shown) + " |",
        "|" + "---:|" * len(shown),
        "| " + " | ".join(_fmt(data[k]) for k in shown) + " |",
        "",
    ]


MUTATION_RUNS = (
    "mutation",
    "mutation_liquidator",
    "mutation_modules",
    "mutation_cash_params",
    "mutation_perp_book",
)
MUTATION_KEYS = ("mutants", "killed", "survived", "kill_rate", "equivalent_survivors",
                 "unexplained_survivors", "kill_rate_counting_rule_equivalent")  # fmt: skip


def _keeper(k: dict[str, Any]) -> list[str]:
    scale = k.get("scale_out", {})
    return [
        f"Keeper bot (`{k['command']}`, commit {k['commit']}): {_fmt(k['accounts'])} accounts x "
        f"{_fmt(k['positions_per_account'])} positions fed from events; milliseconds, p50.",
        "",
        "| measure | kappa | baseline (full rebuild) | baseline / kappa |",
        "|---|---:|---:|---:|",
        f"| block after a price move | {_fmt(k['block_ms_p50'])} | "
        f"{_fmt(k['baseline_full_rebuild_ms_p50'])} | {_fmt(k['ratio_baseline_over_block'])} |",
        f"| block after one account's event | {_fmt(k['incremental_ms_p50'])} | "
        f"{_fmt(k['baseline_full_rebuild_ms_p50'])} | "
        f"{_fmt(k['ratio_baseline_over_incremental'])} |",
        f"| {_fmt(scale.get('accounts'))} accounts, one worker vs two | "
        f"{_fmt(scale.get('two_workers_slowest_ms_p50'))} | "
        f"{_fmt(scale.get('one_worker_ms_p50'))} | "
        f"{_fmt(scale.get('ratio_one_over_two_workers'))} |",
        "",
        f"Backfill from a local node: {_fmt(k.get('node_events'))} events at "
        f"{_fmt(k.get('node_backfill_events_per_s'))} events/s.",
        "",
    ]


def _drills(d: dict[str, Any]) -> list[str]:
    out = [
        f"Keeper fault drills (`{d['command']}`): per drill, accounts missed, duplicate "
        "transactions and the recovery time.",
        "",
        "| drill | missed | duplicates | recovery (s) |",
        "|---|---:|---:|---:|",
    ]
    for name, r in d["drills"].items():
        out.append(
            f"| `{name}` | {_fmt(r['missed'])} | {_fmt(r['duplicates'])} | "
            f"{_fmt(r['recovery_seconds'])} |"
        )
    return [*out, ""]


def _mutation(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The mutation runs (tools/mutate.py), one row each; each file lists its survivors."""
    out = [
        "Mutation testing (`tools/mutate.py`; the survivors and why each survives are in the "
        "files):",
        "",
        "| file | command | commit | " + " | ".join(f"`{k}`" for k in MUTATION_KEYS) + " |",
        "|---|---|---|" + "---:|" * len(MUTATION_KEYS),
    ]
    for name, d in runs:
        cells = " | ".join(_fmt(d.get(k)) for k in MUTATION_KEYS)
        out.append(
            f"| `bench/results/{name}.json` | `{d.get('command', '?')}` | "
            f"{d.get('commit', '?')} | {cells} |"
        )
    out.append("")
    return out


def _greeks(g: dict[str, Any]) -> list[str]:
    rows = [
        ("Greeks", g["n"], "plain numpy + scipy.special.ndtr", "kappa_mops", "plain_ndtr_mops"),
        ("Greeks", g["n"], "numba-jitted loop", "kappa_mops", "numba_mops"),
        ("Greeks", g["sample"], "vollib (scalar loop, 5 outputs)", "kappa_sample_mops",
         "vollib_mops"),
        ("Greeks", g["sample"], "QuantLib BlackCalculator (loop)", "kappa_sample_mops",
         "quantlib_mops"),
        ("implied vol", g["iv_sample"], "vollib (scalar loop)", "iv_sample_mops",
         "vollib_iv_mops"),
    ]  # fmt: skip
    out = [
        f"Greeks and implied vol (`{g['command']}`, commit {g['commit']}): {g['timing']}; "
        f"load average {_fmt(g.get('load_average_at_start'))} at the start, "
        f"{_fmt(g.get('load_average_at_end'))} at the end. Million options per second.",
        "",
        "| what | options | candidate | kappa | candidate | kappa / candidate |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for what, n, name, ours_key, theirs_key in rows:
        ours, theirs = g.get(ours_key), g.get(theirs_key)
        ratio = ours / theirs if ours and theirs else None
        out.append(
            f"| {what} | {_fmt(n)} | {name} | {_fmt(ours)} | {_fmt(theirs)} | {_fmt(ratio)} |"
        )
    out += [
        "",
        f"Implied vol on all {_fmt(g['n'])}: {_fmt(g['iv_mops'])} M/s, max error "
        f"{_fmt(g['iv_max_abs_err'])} where |d1| < 4 ({_fmt(g['iv_core_fraction'])} of the book), "
        f"{_fmt(g['iv_nan_count'])} NaN. Largest relative difference of the 7 outputs from plain "
        f"numpy {_fmt(g['max_rel_diff_vs_plain_ndtr'])}, from numba "
        f"{_fmt(g.get('max_rel_diff_vs_numba'))}, from QuantLib "
        f"{_fmt(g.get('max_rel_diff_vs_quantlib'))}.",
        "",
    ]
    return out


def _margin_mirror(m: dict[str, Any]) -> list[str]:
    targets = m.get("targets", {})
    out = [
        f"Margin mirror (`{m['command']}`, commit {m['commit']}): {_fmt(m['accounts'])} accounts, "
        f"{_fmt(m['positions_held'])} positions in {_fmt(m['series'])} series, "
        f"{_fmt(m['scenarios'])} scenarios x {_fmt(m['modes'])} modes; {m['timing']}; "
        f"milliseconds.",
        "",
        "| call | cold (index built) | warm (index reused) | target |",
        "|---|---:|---:|---:|",
    ]
    for key, name in (("full_ms", "`evaluate`"), ("liquidatable_set_ms", "`liquidatable`")):
        out.append(
            f"| {name} | {_fmt(m[f'cold_{key}'])} | {_fmt(m[f'warm_{key}'])} | "
            f"{_fmt(targets.get(key))} |"
        )
    out += [
        f"| index build alone | {_fmt(m['book_build_ms'])} | - | - |",
        f"| `evaluate`, every position its own series ({_fmt(m['distinct_series'])}) | - | "
        f"{_fmt(m['distinct_full_ms'])} | - |",
        "",
        f"Mismatches of `liquidatable` against the full model: {_fmt(m['mismatches_vs_full'])} "
        f"over {_fmt(m['price_moves'])} moves, {_fmt(m['distinct_mismatches_vs_full'])} in the "
        f"stress case; the screen clears {_fmt(m['screen_cleared_fraction_median'])} of the "
        f"accounts (median).",
        "",
    ]
    return out


def _demo() -> list[str]:
    """The crash demo's headline numbers, from the committed reports/demo.json."""
    path = ROOT / "reports" / "demo.json"
    if not path.exists():
        return []
    d = json.loads(path.read_text())
    try:
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", "reports/demo.json"],
            cwd=ROOT, capture_output=True, text=True,
        ).stdout.strip() or "?"  # fmt: skip
    except OSError:
        commit = "?"
    keys = ("accounts", "steps", "auctions_started", "liquidations", "bids_failed", "bad_debt",
            "insurance_fund_used", "hedges", "max_abs_delta_after_hedge",
            "keeper_reaction_blocks_max", "keeper_reaction_ms_p50", "transactions",
            "runtime_s", "chain_hours", "interest_paid_usd", "interest_earned_usd",
            "max_utilization", "perp_fills", "perp_liquidation_moves", "perp_settle_txs",
            "perp_open_interest", "funding_paid_usd", "funding_received_usd")  # fmt: skip
    interest = d.get("interest", {})
    data = {
        **d,
        "command": "make demo",
        "commit": commit,
        "chain_hours": round(d.get("chain_seconds", 0) / 3600, 2),
        "interest_paid_usd": round(interest.get("paid_by_borrowers", 0.0), 2),
        "interest_earned_usd": round(interest.get("earned_by_suppliers", 0.0), 2),
        "max_utilization": round(interest.get("max_utilization", 0.0), 4),
        "funding_paid_usd": round(d.get("funding_paid", 0.0), 2),
        "funding_received_usd": round(d.get("funding_received", 0.0), 2),
    }
    return _row(
        f"Crash demo on {d.get('network', '?')}, from reports/demo.json as committed",
        data,
        keys,
    )


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
