"""Greeks and implied-vol benchmark: keeper.black76 and keeper.implied_vol against baselines.

One seeded book of N options shaped like a listed chain: forward 3000 * lognormal(0, 0.1), tau
log-uniform from 1 day to 1 year, sigma log-uniform from 20% to 150%, strikes at
F exp(z sigma sqrt(tau)) with z uniform in [-4, 4], half calls, half puts. Every candidate
computes the same 7 outputs (price, delta, gamma, vega, theta, vanna, volga) into fresh arrays.

Vectorized candidates, on all N options:
- kappa: `keeper.black76.black76`;
- plain_ndtr: the textbook formula in numpy with scipy.special.ndtr and the pdf written out
  (`_plain_ndtr`: calls by the formula, puts by parity), what a careful user would write;
- numba: the same textbook formula as a `numba.njit` loop over the options, one thread
  (`math.erfc` for N), compiled before timing (the compile time is reported apart).
Scalar-loop anchors, on a sample of SAMPLE options, each against kappa on the same sample:
- vollib: vollib's black() and analytical delta, gamma, vega, theta (5 of the 7 outputs:
  vollib has no vanna or volga);
- quantlib: QuantLib's BlackCalculator (value, deltaForward, gammaForward, vega, theta, vanna,
  volga); its outputs are also compared with ours (max_rel_diff_vs_quantlib). QuantLib's
  volga(t) divides by the standard deviation sigma sqrt(t) instead of sigma, so it is compared
  as ours / sqrt(tau).
Implied vol: `keeper.implied_vol.implied_vol` on the N prices from black76 (iv_mops), and on
IV_SAMPLE of them against vollib's Let's-Be-Rational port in a scalar loop. iv_max_abs_err is
max |sigma_implied - sigma| over the options with |d1| < 4; since rounding a price to a double
moves sigma by up to eps * price / vega (deep in the money, where the price is mostly
intrinsic), iv_max_err_over_bound = max |error| / (1e-10 + 4 eps price / vega) is reported too.

Timing: the candidates of a group are timed interleaved, one call each per round, the order
rotated every round, so a change of machine load hits them alike; each figure is the median of
its rounds (wall clock, one thread; the fastest and slowest rounds are recorded too). The load
average at the start and the end is recorded: other processes on this 2-core machine slow
every candidate. Ratios are kappa's rate over the candidate's (> 1: kappa is faster).
py_vollib_vectorized is not benchmarked: it does not run on current numba.

Writes bench/results/greeks.json and prints a side-by-side table. Run:
`.venv/bin/python -m bench.greeks`.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np
from scipy.special import ndtr

from bench.common import write_result
from keeper.black76 import black76
from keeper.implied_vol import implied_vol

COMMAND = ".venv/bin/python -m bench.greeks"
N = 1_000_000
SEED = 20_260_707
ROUNDS = 15
ANCHOR_ROUNDS = 3
SAMPLE = 20_000
IV_SAMPLE = 5_000
FIELDS = ("forward", "strike", "tau", "sigma", "is_call")

Book = dict[str, np.ndarray]
Outputs = tuple[np.ndarray, ...]


def book(n: int = N, seed: int = SEED) -> Book:
    """The seeded option book described in the module docstring."""
    rng = np.random.default_rng(seed)
    forward = 3000.0 * np.exp(rng.normal(0.0, 0.1, n))
    tau = np.exp(rng.uniform(np.log(1 / 365), np.log(1.0), n))
    sigma = np.exp(rng.uniform(np.log(0.2), np.log(1.5), n))
    strike = forward * np.exp(rng.uniform(-4.0, 4.0, n) * sigma * np.sqrt(tau))
    is_call = rng.random(n) < 0.5
    return {"forward": forward, "strike": strike, "tau": tau, "sigma": sigma, "is_call": is_call}


def _args(b: Book, m: int | None = None) -> tuple[np.ndarray, ...]:
    return tuple(b[k][:m] for k in FIELDS)


def _plain_ndtr(
    forward: np.ndarray, strike: np.ndarray, tau: np.ndarray, sigma: np.ndarray, is_call: np.ndarray
) -> Outputs:
    """The textbook Black-76 in numpy: scipy.special.ndtr for N, the pdf written out."""
    sqrt_t = np.sqrt(tau)
    s = sigma * sqrt_t
    d1 = (np.log(forward / strike) + 0.5 * s * s) / s
    d2 = d1 - s
    nd1 = ndtr(d1)
    nd2 = ndtr(d2)
    pdf = np.exp(-0.5 * d1 * d1) / np.sqrt(2.0 * np.pi)
    call = forward * nd1 - strike * nd2
    price = np.where(is_call, call, call - (forward - strike))
    delta = np.where(is_call, nd1, nd1 - 1.0)
    gamma = pdf / (forward * s)
    vega = forward * pdf * sqrt_t
    theta = -forward * pdf * sigma / (2.0 * sqrt_t)
    vanna = -pdf * d2 / sigma
    volga = vega * d1 * d2 / sigma
    return price, delta, gamma, vega, theta, vanna, volga


def _numba_candidate() -> tuple[Callable[..., Outputs] | None, float | None, str | None]:
    """The textbook formula as a jitted loop: (function, compile seconds, note if unavailable)."""
    try:
        import numba
    except ImportError as exc:  # pragma: no cover - depends on the environment
        return None, None, f"numba not installed: {exc}"
    inv_sqrt2 = 1.0 / math.sqrt(2.0)
    inv_sqrt_2pi = 1.0 / math.sqrt(2.0 * math.pi)

    @numba.njit(cache=False)
    def loop(
        F: np.ndarray, K: np.ndarray, T: np.ndarray, S: np.ndarray, C: np.ndarray, out: np.ndarray
    ) -> None:
        for i in range(F.size):
            f, k, sig = F[i], K[i], S[i]
            sqrt_t = math.sqrt(T[i])
            s = sig * sqrt_t
            d1 = math.log(f / k) / s + 0.5 * s
            d2 = d1 - s
            nd1 = 0.5 * math.erfc(-d1 * inv_sqrt2)
            nd2 = 0.5 * math.erfc(-d2 * inv_sqrt2)
            pdf = math.exp(-0.5 * d1 * d1) * inv_sqrt_2pi
            call = f * nd1 - k * nd2
            if C[i]:
                out[0, i] = call
                out[1, i] = nd1
            else:
                out[0, i] = call - (f - k)
                out[1, i] = nd1 - 1.0
            vega = f * pdf * sqrt_t
            out[2, i] = pdf / (f * s)
            out[3, i] = vega
            out[4, i] = -f * pdf * sig / (2.0 * sqrt_t)
            out[5, i] = -pdf * d2 / sig
            out[6, i] = vega * d1 * d2 / sig

    def run(
        forward: np.ndarray,
        strike: np.ndarray,
        tau: np.ndarray,
        sigma: np.ndarray,
        is_call: np.ndarray,
    ) -> Outputs:
        out = np.empty((7, forward.size))
        loop(forward, strike, tau, sigma, is_call, out)
        return tuple(out)

    small = _args(book(16, 1))
    start = time.perf_counter()
    run(*small)
    return run, time.perf_counter() - start, None


def _vollib_candidate(b: Book, m: int) -> tuple[Callable[[], None] | None, str | None]:
    try:
        from vollib.black import black
        from vollib.black.greeks import analytical as ga
    except ImportError as exc:  # pragma: no cover - depends on the environment
        return None, f"vollib not installed: {exc}"
    rows = list(
        zip(
            np.where(b["is_call"][:m], "c", "p").tolist(),
            *(b[k][:m].tolist() for k in ("forward", "strike", "tau", "sigma")),
            strict=True,
        )
    )

    def run() -> None:
        for flag, f, k, t, v in rows:
            black(flag, f, k, t, 0.0, v)
            ga.delta(flag, f, k, t, 0.0, v)
            ga.gamma(flag, f, k, t, 0.0, v)
            ga.vega(flag, f, k, t, 0.0, v)
            ga.theta(flag, f, k, t, 0.0, v)

    return run, None


def _quantlib_candidate(
    b: Book, m: int
) -> tuple[Callable[[], list[tuple[float, ...]]] | None, str | None]:
    try:
        import QuantLib as ql  # noqa: N813 - the library's documented alias
    except ImportError as exc:  # pragma: no cover - depends on the environment
        return None, f"QuantLib not installed: {exc}"
    call, put = ql.Option.Call, ql.Option.Put
    rows = list(
        zip(
            b["is_call"][:m].tolist(),
            b["forward"][:m].tolist(),
            b["strike"][:m].tolist(),
            b["tau"][:m].tolist(),
            (b["sigma"][:m] * np.sqrt(b["tau"][:m])).tolist(),
            strict=True,
        )
    )

    def run() -> list[tuple[float, ...]]:
        results = []
        for c, f, k, t, std in rows:
            calc = ql.BlackCalculator(ql.PlainVanillaPayoff(call if c else put, k), f, std, 1.0)
            results.append(
                (
                    calc.value(),
                    calc.deltaForward(),
                    calc.gammaForward(),
                    calc.vega(t),
                    calc.theta(f, t),
                    calc.vanna(f, t),
                    calc.volga(t),
                )
            )
        return results

    return run, None


def _vollib_iv_candidate(b: Book, prices: np.ndarray, m: int) -> Callable[[], None] | None:
    try:
        from vollib.black.implied_volatility import implied_volatility
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    rows = list(
        zip(
            prices[:m].tolist(),
            b["forward"][:m].tolist(),
            b["strike"][:m].tolist(),
            b["tau"][:m].tolist(),
            np.where(b["is_call"][:m], "c", "p").tolist(),
            strict=True,
        )
    )

    def run() -> None:
        for p, f, k, t, flag in rows:
            try:
                implied_volatility(p, f, k, 0.0, t, flag)
            except Exception:  # vollib raises on prices at the bounds
                continue

    return run


def interleaved(candidates: dict[str, Callable[[], object]], rounds: int) -> dict[str, Any]:
    """Time the candidates round by round (one call each per round, order rotated per round)
    after one untimed warm-up call each; per candidate the median, fastest and slowest round."""
    names = list(candidates)
    for name in names:
        candidates[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            gc.collect()
            start = time.perf_counter()
            candidates[name]()
            times[name].append(time.perf_counter() - start)
    return {
        name: {
            "median_s": statistics.median(t),
            "min_s": min(t),
            "max_s": max(t),
            "rounds": rounds,
        }
        for name, t in times.items()
    }


def _mops(count: int, seconds: float | None) -> float | None:
    return None if seconds is None else count / seconds / 1e6


def _max_rel_diff(ours: Outputs, theirs: Outputs) -> float:
    a, b = np.array(ours), np.array(theirs)
    return float(np.max(np.abs(a - b) / (1.0 + np.abs(b))))


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "numba", "vollib", "QuantLib"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def main() -> dict[str, Any]:
    load_start = os.getloadavg()[0]
    b = book()
    args = _args(b)
    notes: dict[str, str] = {}

    # Vectorized Greeks on all N options.
    numba_run, numba_compile_s, note = _numba_candidate()
    if note:
        notes["numba"] = note
    vector: dict[str, Callable[[], object]] = {
        "kappa": lambda: black76(*args),
        "plain_ndtr": lambda: _plain_ndtr(*args),
    }
    if numba_run is not None:
        vector["numba"] = lambda: numba_run(*args)
    vector_t = interleaved(vector, ROUNDS)

    greeks = black76(*args)
    agreement = {"plain_ndtr": _max_rel_diff(tuple(greeks), _plain_ndtr(*args))}
    if numba_run is not None:
        agreement["numba"] = _max_rel_diff(tuple(greeks), numba_run(*args))

    # Scalar-loop anchors against kappa on the same SAMPLE options.
    sample = _args(b, SAMPLE)
    anchors: dict[str, Callable[[], object]] = {"kappa": lambda: black76(*sample)}
    vollib_run, note = _vollib_candidate(b, SAMPLE)
    if vollib_run is not None:
        anchors["vollib"] = vollib_run
    elif note:
        notes["vollib"] = note
    quantlib_run, note = _quantlib_candidate(b, SAMPLE)
    if quantlib_run is not None:
        anchors["quantlib"] = quantlib_run
    elif note:
        notes["quantlib"] = note
    anchor_t = interleaved(anchors, ANCHOR_ROUNDS)
    quantlib_agree = None
    if quantlib_run is not None:
        ours = np.array(black76(*sample))
        ours[6] /= np.sqrt(b["tau"][:SAMPLE])  # QuantLib's volga convention (module docstring)
        theirs = np.array(quantlib_run()).T
        scale = np.maximum(np.abs(theirs), 1e-300)
        quantlib_agree = float(
            np.max(np.abs(ours - theirs) / scale, where=np.abs(theirs) > 1e-8, initial=0.0)
        )

    # Implied vol: all N alone, then IV_SAMPLE against vollib.
    price_args = (greeks.price, b["forward"], b["strike"], b["tau"], b["is_call"])
    iv_t = interleaved({"kappa": lambda: implied_vol(*price_args)}, ROUNDS)
    iv = implied_vol(*price_args)
    s = b["sigma"] * np.sqrt(b["tau"])
    d1 = np.log(b["forward"] / b["strike"]) / s + 0.5 * s
    core = np.abs(d1) < 4
    iv_err = np.abs(iv - b["sigma"])
    bound = 1e-10 + 4 * np.finfo(np.float64).eps * greeks.price / greeks.vega
    iv_anchor: dict[str, Callable[[], object]] = {
        "kappa": lambda: implied_vol(*(a[:IV_SAMPLE] for a in price_args))
    }
    vollib_iv = _vollib_iv_candidate(b, greeks.price, IV_SAMPLE)
    if vollib_iv is not None:
        iv_anchor["vollib"] = vollib_iv
    iv_anchor_t = interleaved(iv_anchor, ANCHOR_ROUNDS)

    def rate(group: dict[str, Any], name: str, count: int) -> float | None:
        return _mops(count, group[name]["median_s"]) if name in group else None

    def ratio(group: dict[str, Any], name: str) -> float | None:
        return group[name]["median_s"] / group["kappa"]["median_s"] if name in group else None

    result: dict[str, Any] = {
        "n": N,
        "kappa_mops": rate(vector_t, "kappa", N),
        "plain_ndtr_mops": rate(vector_t, "plain_ndtr", N),
        "ratio_vs_plain_ndtr": ratio(vector_t, "plain_ndtr"),
        "numba_mops": rate(vector_t, "numba", N),
        "ratio_vs_numba": ratio(vector_t, "numba"),
        "numba_compile_s": numba_compile_s,
        "sample": SAMPLE,
        "kappa_sample_mops": rate(anchor_t, "kappa", SAMPLE),
        "vollib_mops": rate(anchor_t, "vollib", SAMPLE),
        "ratio_vs_vollib": ratio(anchor_t, "vollib"),
        "vollib_outputs": "price, delta, gamma, vega, theta (vollib has no vanna/volga)",
        "quantlib_mops": rate(anchor_t, "quantlib", SAMPLE),
        "ratio_vs_quantlib": ratio(anchor_t, "quantlib"),
        "iv_mops": rate(iv_t, "kappa", N),
        "iv_sample": IV_SAMPLE,
        "iv_sample_mops": rate(iv_anchor_t, "kappa", IV_SAMPLE),
        "vollib_iv_mops": rate(iv_anchor_t, "vollib", IV_SAMPLE),
        "iv_ratio_vs_vollib": ratio(iv_anchor_t, "vollib"),
        "iv_max_abs_err": float(np.max(iv_err[core])),
        "iv_max_err_over_bound": float(np.max((iv_err / bound)[core])),
        "iv_core_fraction": float(core.mean()),
        "iv_nan_count": int(np.isnan(iv).sum()),
        "max_rel_diff_vs_plain_ndtr": agreement["plain_ndtr"],
        "max_rel_diff_vs_numba": agreement.get("numba"),
        "max_rel_diff_vs_quantlib": quantlib_agree,
        "timing": (
            f"wall clock, 1 thread, candidates interleaved round by round (order rotated), "
            f"median of {ROUNDS} rounds ({ANCHOR_ROUNDS} for the scalar-loop anchors)"
        ),
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg()[0],
        "seed": SEED,
        "rounds": {
            "greeks": vector_t,
            "greeks_sample": anchor_t,
            "implied_vol": iv_t,
            "implied_vol_sample": iv_anchor_t,
        },
        "versions": _versions(),
    }
    if notes:
        result["notes"] = notes
    write_result("greeks", result, COMMAND)
    _print_table(result)
    return result


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _print_table(r: dict[str, Any]) -> None:
    rows = [
        (f"Greeks x{r['n']:,}", "plain numpy + ndtr", r["kappa_mops"], r["plain_ndtr_mops"]),
        (f"Greeks x{r['n']:,}", "numba loop", r["kappa_mops"], r["numba_mops"]),
        (f"Greeks x{r['sample']:,}", "vollib loop", r["kappa_sample_mops"], r["vollib_mops"]),
        (f"Greeks x{r['sample']:,}", "QuantLib loop", r["kappa_sample_mops"], r["quantlib_mops"]),
        (f"IV x{r['iv_sample']:,}", "vollib loop", r["iv_sample_mops"], r["vollib_iv_mops"]),
    ]
    print(f"{'M options/s':24s} {'candidate':20s} {'kappa':>9s} {'candidate':>10s} {'ratio':>8s}")
    for what, name, ours, theirs in rows:
        ratio = None if not theirs or ours is None else ours / theirs
        shown = _fmt(ratio, ".2f")
        print(f"{what:24s} {name:20s} {_fmt(ours):>9s} {_fmt(theirs):>10s} {shown:>8s}")
    print(
        f"implied vol x{r['n']:,}: {_fmt(r['iv_mops'])} M/s; max |error| (|d1| < 4, "
        f"{r['iv_core_fraction']:.0%} of the book) {r['iv_max_abs_err']:.2e}"
    )
    print(
        f"numba compile {_fmt(r['numba_compile_s'], '.2f')} s (not timed); load average "
        f"{r['load_average_at_start']:.2f} -> {r['load_average_at_end']:.2f}"
    )


if __name__ == "__main__":
    main()
