"""Margin mirror benchmark: keeper.margin on 10,000 accounts x 16 positions x 21 scenarios.

One seeded book of realistic portfolios on a listed chain (spot 3000; one expired and settled
expiry plus 1, 7, 30, 90 and 180 days; 21 strikes each, calls and puts; 252 series), every
account holding the maximum of 16 positions over several expiries (series near the money and
near expiries are the most traded):
- market makers (25%): 75% of their positions short, sizes ~25, delta-hedged with the
  underlying where their options are short delta (the underlying balance cannot be negative);
- directional traders (45%): 80% long, sizes ~3, 30% of them holding the underlying;
- writers (20%): out-of-the-money covered calls (underlying = calls sold) or cash-secured puts;
- spread traders (10%): verticals (a long and a short leg of one expiry and type).
Cash is set so that H_MM at the starting market is a chosen buffer: 4% of the accounts start
under water (-3%..0 of their gross notional), 20% near the boundary (0..2%), the rest 2..60%.

Then PRICE_MOVES random market updates, each from the starting market: spot x U(0.6, 1.4),
every ATM vol x exp(N(0, 0.25)) (within the vol bounds), skews + N(0, 0.03), time + U(0, 4 h),
confidence U(0.97, 1), and in 10% of the moves one stale expiry (markup 0.25). Per move:
- full_ms: `evaluate` (MtM, both modes, all scenarios, witnesses) after the update;
- liquidatable_set_ms: `liquidatable` (screen + exact model near the boundary);
- mismatches: |liquidatable set XOR {H_MM < 0 from evaluate}| (must be 0).
Each figure is reported twice:
- warm: the portfolio index (`Portfolios.book`, built once per set of portfolios and reused
  while the portfolios do not change, as the keeper's mirror does between fills) already built;
  the median over the PRICE_MOVES moves of the median of REPEATS runs;
- cold: the index built from scratch inside the timed call (a fresh copy of the portfolios per
  run, as after a restart or a change of every book); the median over COLD_MOVES moves x
  REPEATS runs. book_build_ms is the index build alone.
Wall clock, one thread. The stress case `distinct_*` gives every position its own series
(random strikes off the grid, U = A * P), the worst case for the per-series pricing, on
STRESS_MOVES moves (warm).

Writes bench/results/margin_mirror.json and prints a side-by-side table. Run:
`.venv/bin/python -m bench.margin_mirror`.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from bench.common import table, write_result
from keeper.margin import (
    SECONDS_PER_YEAR,
    Market,
    Portfolios,
    account_greeks,
    evaluate,
    liquidatable,
    mm_health_lower_bound,
)
from tests.deployment import MARGIN_PARAMS

ACCOUNTS = 10_000
POSITIONS = 16
PRICE_MOVES = 50
STRESS_MOVES = 5
COLD_MOVES = 5
REPEATS = 3
SEED = 20_260_708
TARGETS = {"full_ms": 250.0, "liquidatable_set_ms": 50.0}

DAY = 86_400
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
SPOT = 3000.0
EXPIRY_DAYS = (1, 7, 30, 90, 180)
ATM = (0.75, 0.70, 0.65, 0.62, 0.60)
SKEW = (-0.15, -0.12, -0.10, -0.08, -0.06)
STRIKES_PER_EXPIRY = 21

# The test deployment's risk parameters (tests/deployment.py), sigma_ref's floor at 100%.
PARAMS = replace(MARGIN_PARAMS, ref_vol=1.0)


def base_market() -> Market:
    """The starting market: one expired, settled expiry and five live ones."""
    expiries = np.array([NOW - 3600, *(NOW + d * DAY for d in EXPIRY_DAYS)])
    return Market(
        spot=SPOT,
        confidence=0.995,
        now=NOW,
        expiries=expiries,
        atm=np.array([np.nan, *ATM]),
        skew=np.array([0.0, *SKEW]),
        settlement=np.array([2990.0] + [np.nan] * len(EXPIRY_DAYS)),
        vol_min=0.05,
        vol_max=3.0,
    )


def chain(market: Market) -> tuple[np.ndarray, np.ndarray]:
    """Listed strikes [E, STRIKES_PER_EXPIRY] (multiples of 25) and the expiries [E]."""
    tau = np.maximum((market.expiries - market.now) / SECONDS_PER_YEAR, 7 / 365)
    z = np.linspace(-2.5, 2.5, STRIKES_PER_EXPIRY)
    raw = SPOT * np.exp(z[None, :] * 0.65 * np.sqrt(tau)[:, None])
    return np.round(raw / 25.0) * 25.0, market.expiries


def make_portfolios(
    rng: np.random.Generator, market: Market, accounts: int = ACCOUNTS
) -> Portfolios:
    """The seeded book described in the module docstring (cash set from the buffers)."""
    strikes, expiries = chain(market)
    kind = rng.choice(4, size=accounts, p=[0.25, 0.45, 0.20, 0.10])  # mm, dir, writer, spread
    shape = (accounts, POSITIONS)
    e = rng.choice(expiries.size, size=shape, p=[0.03, 0.25, 0.25, 0.2, 0.15, 0.12])
    center = STRIKES_PER_EXPIRY // 2
    k = np.clip(np.rint(rng.normal(center, 4.0, shape)), 0, STRIKES_PER_EXPIRY - 1).astype(int)
    is_call = rng.random(shape) < 0.5
    short_p = np.array([0.75, 0.2, 1.0, 0.5])[kind][:, None]
    sign = np.where(rng.random(shape) < short_p, -1.0, 1.0)
    scale = np.array([25.0, 3.0, 8.0, 5.0])[kind][:, None]
    size = sign * scale * rng.uniform(0.2, 2.0, shape)
    writer = kind == 2
    covered = writer & (rng.random(accounts) < 0.5)
    # Writers sell out-of-the-money calls (covered) or puts (cash-secured).
    is_call[writer] = covered[writer][:, None]
    otm = np.where(is_call, np.maximum(k, center + 1), np.minimum(k, center - 1))
    k = np.where(writer[:, None], otm, k)
    # Spreads: odd slots mirror the even slot before them: same expiry and type, strike a few
    # steps away, opposite size.
    spread = kind == 3
    pair = np.zeros(shape, bool)
    pair[:, 1::2] = spread[:, None]
    prev = np.roll(np.arange(POSITIONS), 1)
    step = rng.integers(1, 4, shape) * np.where(rng.random(shape) < 0.5, -1, 1)
    e = np.where(pair, e[:, prev], e)
    is_call = np.where(pair, is_call[:, prev], is_call)
    k = np.where(pair, np.clip(k[:, prev] + step, 0, STRIKES_PER_EXPIRY - 1), k)
    size = np.where(pair, -size[:, prev], size)
    size = np.round(size, 2)
    size[size == 0] = 0.01
    strike = strikes[e, k]
    expiry = expiries[e]
    underlying = np.zeros(accounts)
    underlying[covered] = -np.where(is_call, size, 0.0)[covered].sum(axis=1)
    directional = (kind == 1) & (rng.random(accounts) < 0.3)
    underlying[directional] = rng.uniform(0.5, 20.0, int(directional.sum()))
    book = Portfolios(np.zeros(accounts), underlying, strike, expiry, is_call, size)
    mm = kind == 0
    if mm.any():
        delta = account_greeks(book.take(np.flatnonzero(mm)), market).delta
        underlying[mm] = np.maximum(-delta, 0.0)
    return _with_buffers(rng, market, underlying, strike, expiry, is_call, size)


def _with_buffers(rng, market, underlying, strike, expiry, is_call, size) -> Portfolios:
    accounts = underlying.size
    zero = Portfolios(np.zeros(accounts), underlying, strike, expiry, is_call, size)
    h0 = evaluate(zero, market, PARAMS).health_mm
    notional = (np.abs(size).sum(axis=1) + underlying) * market.spot
    band = rng.choice(3, size=accounts, p=[0.04, 0.20, 0.76])
    lo = np.array([-0.03, 0.0, 0.02])[band]
    hi = np.array([0.0, 0.02, 0.6])[band]
    buffer = rng.uniform(lo, hi) * notional
    return Portfolios(buffer - h0, underlying, strike, expiry, is_call, size)


def distinct_series(rng: np.random.Generator, p: Portfolios) -> Portfolios:
    """The same book with every strike moved off the grid: every position its own series."""
    strike = np.where(p.size != 0, p.strike * rng.uniform(0.995, 1.005, p.strike.shape), 1.0)
    return Portfolios(p.cash, p.underlying, strike, p.expiry, p.is_call, p.size)


def moved_market(rng: np.random.Generator, base: Market) -> Market:
    """A random price update of the starting market (see the module docstring)."""
    live = ~np.isnan(base.atm)
    atm = np.where(live, base.atm * np.exp(rng.normal(0.0, 0.25, base.atm.size)), np.nan)
    atm = np.where(live, np.clip(atm, base.vol_min, base.vol_max), np.nan)
    markup = np.zeros(base.atm.size)
    if rng.random() < 0.1:
        markup[rng.choice(np.flatnonzero(live))] = 0.25
    return Market(
        spot=base.spot * rng.uniform(0.6, 1.4),
        confidence=rng.uniform(0.97, 1.0),
        now=base.now + int(rng.integers(0, 4 * 3600)),
        expiries=base.expiries,
        atm=atm,
        skew=base.skew + rng.normal(0.0, 0.03, base.skew.size),
        settlement=base.settlement,
        vol_min=base.vol_min,
        vol_max=base.vol_max,
        stale_markup=markup,
    )


def _median_ms(fn: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), result


def run_moves(portfolios: Portfolios, markets: list[Market]) -> dict[str, Any]:
    """Time evaluate and liquidatable on each market; count mismatches and screen statistics."""
    full, liq, mismatches, cleared, liquidatable_counts = [], [], 0, [], []
    for market in markets:
        t_full, result = _median_ms(lambda m=market: evaluate(portfolios, m, PARAMS))
        t_liq, found = _median_ms(lambda m=market: liquidatable(portfolios, m, PARAMS))
        truth = np.flatnonzero(result.health_mm < 0)
        mismatches += int(np.setxor1d(truth, found).size)
        bound, tol = mm_health_lower_bound(portfolios, market, PARAMS)
        cleared.append(float(np.mean(bound >= tol)))
        liquidatable_counts.append(int(truth.size))
        full.append(t_full)
        liq.append(t_liq)
    return {
        "full_ms": statistics.median(full),
        "full_ms_max": max(full),
        "liquidatable_set_ms": statistics.median(liq),
        "liquidatable_set_ms_max": max(liq),
        "mismatches_vs_full": mismatches,
        "screen_cleared_fraction_median": statistics.median(cleared),
        "liquidatable_accounts_median": statistics.median(liquidatable_counts),
        "liquidatable_accounts_max": max(liquidatable_counts),
    }


def run_cold(portfolios: Portfolios, markets: list[Market]) -> dict[str, float]:
    """evaluate, liquidatable and the index build alone, each on a fresh copy of the portfolios
    (the copy is made outside the timed call): medians over the moves x REPEATS runs."""
    build, full, liq = [], [], []
    everyone = np.arange(portfolios.n_accounts)
    for market in markets:
        for _ in range(REPEATS):
            fresh = portfolios.take(everyone)
            build.append(_median_ms(lambda f=fresh: f.book, repeats=1)[0])
            fresh = portfolios.take(everyone)
            full.append(_median_ms(lambda f=fresh, m=market: evaluate(f, m, PARAMS), 1)[0])
            fresh = portfolios.take(everyone)
            liq.append(_median_ms(lambda f=fresh, m=market: liquidatable(f, m, PARAMS), 1)[0])
    return {
        "cold_full_ms": statistics.median(full),
        "cold_liquidatable_set_ms": statistics.median(liq),
        "book_build_ms": statistics.median(build),
    }


def main() -> dict[str, Any]:
    load = os.getloadavg()[0]
    rng = np.random.default_rng(SEED)
    market = base_market()
    portfolios = make_portfolios(rng, market)
    markets = [moved_market(rng, market) for _ in range(PRICE_MOVES)]
    evaluate(portfolios, markets[0], PARAMS)  # warm the book and the imports
    listed = run_moves(portfolios, markets)
    cold = run_cold(portfolios, markets[:COLD_MOVES])
    stress_book = distinct_series(rng, portfolios)
    evaluate(stress_book, markets[0], PARAMS)
    stress = run_moves(stress_book, markets[:STRESS_MOVES])
    h0 = evaluate(portfolios, market, PARAMS).health_mm
    data: dict[str, Any] = {
        "accounts": ACCOUNTS,
        "positions_per_account": POSITIONS,
        "positions_held": int(np.count_nonzero(portfolios.size)),
        "series": int(portfolios.book.strike.size),
        "scenarios": PARAMS.n_scenarios,
        "modes": 2,
        "price_moves": PRICE_MOVES,
        "warm_full_ms": listed.pop("full_ms"),
        "cold_full_ms": cold["cold_full_ms"],
        "warm_liquidatable_set_ms": listed.pop("liquidatable_set_ms"),
        "cold_liquidatable_set_ms": cold["cold_liquidatable_set_ms"],
        "book_build_ms": cold["book_build_ms"],
        "cold_moves": COLD_MOVES,
        **listed,
        "liquidatable_at_start": int(np.count_nonzero(h0 < 0)),
        "distinct_series": int(stress_book.book.strike.size),
        "distinct_price_moves": STRESS_MOVES,
        "distinct_full_ms": stress["full_ms"],
        "distinct_liquidatable_set_ms": stress["liquidatable_set_ms"],
        "distinct_mismatches_vs_full": stress["mismatches_vs_full"],
        "targets": TARGETS,
        "timing": (
            f"wall clock, 1 thread; warm: median over moves of the median of {REPEATS} runs, "
            f"cold: median over {COLD_MOVES} moves x {REPEATS} runs, index built in the call"
        ),
        "load_average_at_start": load,
        "load_average_at_end": os.getloadavg()[0],
        "seed": SEED,
        "versions": {"python": platform.python_version(), "numpy": np.__version__},
    }
    write_result("margin_mirror", data, ".venv/bin/python -m bench.margin_mirror")
    rows: list[list[object]] = [
        [key, data[f"cold_{key}"], data[f"warm_{key}"], target, data[f"warm_{key}"] / target]
        for key, target in TARGETS.items()
    ]
    rows.append(["book_build_ms", data["book_build_ms"], None, None, None])
    rows.append(["mismatches_vs_full", None, data["mismatches_vs_full"], 0, None])
    print(table(["metric", "cold", "warm", "target", "warm / target"], rows))
    print(
        f"{ACCOUNTS:,} accounts, {data['positions_held']:,} positions in {data['series']} series,"
        f" {data['scenarios']} scenarios x 2 modes; {PRICE_MOVES} price moves; screen cleared"
        f" {data['screen_cleared_fraction_median']:.1%} (median); liquidatable accounts median"
        f" {data['liquidatable_accounts_median']}, max {data['liquidatable_accounts_max']}"
    )
    print(
        f"every position its own series ({data['distinct_series']:,}, warm): full"
        f" {data['distinct_full_ms']:.0f} ms, liquidatable"
        f" {data['distinct_liquidatable_set_ms']:.0f} ms, mismatches"
        f" {data['distinct_mismatches_vs_full']}"
    )
    return data


if __name__ == "__main__":
    main()
