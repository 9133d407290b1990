"""Greeks and implied-vol benchmark: keeper.black76 against plain numpy, vollib and QuantLib.

One run, one seeded book of N = 1,000,000 options, shaped like a listed chain: forward
3000 * lognormal(0, 0.1), tau log-uniform from 1 day to 1 year, sigma log-uniform from 20% to
150%, strikes at F exp(z sigma sqrt(tau)) with z uniform in [-4, 4], half calls, half puts.

- kappa_mops: `keeper.black76.black76` (price + 6 Greeks) on all N, million option-sets / s.
- plain_numpy_mops: the straightforward implementation someone would write (below, `_plain`):
  scipy.stats.norm.cdf / pdf, calls by the textbook formula and puts by parity.
  `plain_ndtr_mops` is the same with scipy.special.ndtr and an inline pdf (a stronger plain
  version, reported for transparency).
- vollib_mops: vollib's black() + analytical delta, gamma, vega, theta (it has no vanna or volga,
  so it does 5 of the 7 outputs) in a Python loop over VOLLIB_SAMPLE options, scaled to M/s.
- quantlib_mops: QuantLib's BlackCalculator (value, deltaForward, gammaForward, vega, theta,
  vanna, volga) in a Python loop over QUANTLIB_SAMPLE options, scaled to M/s. Its outputs are
  also compared with ours (max_rel_diff_vs_quantlib); QuantLib's volga(t) divides by the
  standard deviation sigma sqrt(t) instead of sigma, so it is compared as ours / sqrt(tau).
- iv_mops: `keeper.implied_vol.implied_vol` on the N prices from black76; iv_max_abs_err is
  max |sigma_implied - sigma| over the options with |d1| < 4. Rounding a price to a double
  moves sigma by up to eps * price / vega (which matters deep in the money, where the price is
  mostly intrinsic), so iv_max_err_over_bound = max |error| / (1e-10 + 4 eps price / vega) is
  reported too. vollib_iv_mops (vollib's Let's-Be-Rational port, scalar loop) is the anchor.

Timings are wall clock, best of REPEATS runs (the anchors' loops: best of ANCHOR_REPEATS), one
thread. The machine's load average at the start is recorded: other processes on this 2-core box
slow every number, ours and the anchors' alike; `cpu_mops` repeats ours and plain numpy's in
process CPU time, which contention inflates less. py_vollib_vectorized is not benchmarked: it no
longer runs on current numba.

Writes bench/results/greeks.json and prints a side-by-side table. Run:
`.venv/bin/python -m bench.greeks`.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import write_result
from keeper.black76 import black76
from keeper.implied_vol import implied_vol

RESULTS = Path(__file__).resolve().parent / "results" / "greeks.json"
N = 1_000_000
SEED = 20_260_707
REPEATS = 7
ANCHOR_REPEATS = 3
VOLLIB_SAMPLE = 20_000
QUANTLIB_SAMPLE = 20_000
VOLLIB_IV_SAMPLE = 5_000


def book(n: int = N, seed: int = SEED) -> dict[str, np.ndarray]:
    """The seeded option book described in the module docstring."""
    rng = np.random.default_rng(seed)
    forward = 3000.0 * np.exp(rng.normal(0.0, 0.1, n))
    tau = np.exp(rng.uniform(np.log(1 / 365), np.log(1.0), n))
    sigma = np.exp(rng.uniform(np.log(0.2), np.log(1.5), n))
    strike = forward * np.exp(rng.uniform(-4.0, 4.0, n) * sigma * np.sqrt(tau))
    is_call = rng.random(n) < 0.5
    return {"forward": forward, "strike": strike, "tau": tau, "sigma": sigma, "is_call": is_call}


def _plain(forward, strike, tau, sigma, is_call):
    """A plain numpy Black-76: scipy.stats.norm for N and phi, puts by put-call parity."""
    from scipy.stats import norm

    sqrt_t = np.sqrt(tau)
    s = sigma * sqrt_t
    d1 = (np.log(forward / strike) + 0.5 * s * s) / s
    d2 = d1 - s
    nd1 = norm.cdf(d1)
    nd2 = norm.cdf(d2)
    pdf = norm.pdf(d1)
    call = forward * nd1 - strike * nd2
    price = np.where(is_call, call, call - (forward - strike))
    delta = np.where(is_call, nd1, nd1 - 1.0)
    gamma = pdf / (forward * s)
    vega = forward * pdf * sqrt_t
    theta = -forward * pdf * sigma / (2.0 * sqrt_t)
    vanna = -pdf * d2 / sigma
    volga = vega * d1 * d2 / sigma
    return price, delta, gamma, vega, theta, vanna, volga


def _plain_ndtr(forward, strike, tau, sigma, is_call):
    """The same with scipy.special.ndtr and the pdf written out (a stronger plain version)."""
    from scipy.special import ndtr

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


def _best(run: Callable[[], object], repeats: int, clock=time.perf_counter) -> float:
    """Best time of `repeats` calls on `clock` (wall by default), after one warm-up call."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        run()
        best = min(best, clock() - start)
    return best


def _mops(count: int, seconds: float) -> float:
    return count / seconds / 1e6


def _vollib(b: dict[str, np.ndarray], m: int) -> tuple[float | None, str | None]:
    try:
        from vollib.black import black
        from vollib.black.greeks import analytical as ga
    except ImportError as exc:  # pragma: no cover - depends on the environment
        return None, f"vollib not installed: {exc}"
    rows = list(
        zip(
            np.where(b["is_call"][:m], "c", "p").tolist(),
            b["forward"][:m].tolist(),
            b["strike"][:m].tolist(),
            b["tau"][:m].tolist(),
            b["sigma"][:m].tolist(),
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

    return _mops(m, _best(run, ANCHOR_REPEATS)), None


def _quantlib(b: dict[str, np.ndarray], m: int) -> tuple[float | None, str | None, float | None]:
    """QuantLib timing, and the max relative difference of its 7 outputs from black76's."""
    try:
        import QuantLib as ql  # noqa: N813 - the library's documented alias
    except ImportError as exc:  # pragma: no cover - depends on the environment
        return None, f"QuantLib not installed: {exc}", None
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
    results: list[tuple[float, ...]] = []

    def run() -> None:
        results.clear()
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

    mops = _mops(m, _best(run, ANCHOR_REPEATS))
    ours = np.array(black76(*(b[k][:m] for k in ("forward", "strike", "tau", "sigma", "is_call"))))
    ours[6] /= np.sqrt(b["tau"][:m])  # QuantLib's volga convention (see the module docstring)
    theirs = np.array(results).T
    scale = np.maximum(np.abs(theirs), 1e-300)
    agree = float(np.max(np.abs(ours - theirs) / scale, where=np.abs(theirs) > 1e-8, initial=0.0))
    return mops, None, agree


def _vollib_iv(b: dict[str, np.ndarray], prices: np.ndarray, m: int) -> float | None:
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

    return _mops(m, _best(run, 1))


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "vollib", "QuantLib"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def main() -> dict[str, Any]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    b = book()
    args = tuple(b[k] for k in ("forward", "strike", "tau", "sigma", "is_call"))

    t_kappa = _best(lambda: black76(*args), REPEATS)
    t_plain = _best(lambda: _plain(*args), REPEATS)
    t_ndtr = _best(lambda: _plain_ndtr(*args), REPEATS)
    greeks = black76(*args)
    plain = np.array(_plain(*args))
    agree_plain = float(np.max(np.abs(np.array(greeks) - plain) / (1.0 + np.abs(plain))))

    price_args = (greeks.price, b["forward"], b["strike"], b["tau"], b["is_call"])
    t_iv = _best(lambda: implied_vol(*price_args), REPEATS)
    iv = implied_vol(*price_args)
    s = b["sigma"] * np.sqrt(b["tau"])
    d1 = np.log(b["forward"] / b["strike"]) / s + 0.5 * s
    core = np.abs(d1) < 4
    iv_err = np.abs(iv - b["sigma"])
    bound = 1e-10 + 4 * np.finfo(np.float64).eps * greeks.price / greeks.vega

    vollib_mops, vollib_note = _vollib(b, VOLLIB_SAMPLE)
    quantlib_mops, quantlib_note, quantlib_agree = _quantlib(b, QUANTLIB_SAMPLE)
    vollib_iv = _vollib_iv(b, greeks.price, VOLLIB_IV_SAMPLE)

    kappa = _mops(N, t_kappa)
    iv_mops = _mops(N, t_iv)
    cpu = time.process_time
    cpu_mops = {
        "kappa": _mops(N, _best(lambda: black76(*args), REPEATS, cpu)),
        "plain_numpy": _mops(N, _best(lambda: _plain(*args), REPEATS, cpu)),
        "iv": _mops(N, _best(lambda: implied_vol(*price_args), REPEATS, cpu)),
    }
    result: dict[str, Any] = {
        "n": N,
        "kappa_mops": kappa,
        "plain_numpy_mops": _mops(N, t_plain),
        "ratio_vs_plain_numpy": t_plain / t_kappa,
        "plain_ndtr_mops": _mops(N, t_ndtr),
        "ratio_vs_plain_ndtr": t_ndtr / t_kappa,
        "vollib_mops": vollib_mops,
        "vollib_outputs": "price, delta, gamma, vega, theta (vollib has no vanna/volga)",
        "quantlib_mops": quantlib_mops,
        "iv_mops": iv_mops,
        "iv_max_abs_err": float(np.max(iv_err[core])),
        "iv_max_err_over_bound": float(np.max((iv_err / bound)[core])),
        "iv_core_fraction": float(core.mean()),
        "iv_nan_count": int(np.isnan(iv).sum()),
        "vollib_iv_mops": vollib_iv,
        "max_rel_diff_vs_plain": agree_plain,
        "max_rel_diff_vs_quantlib": quantlib_agree,
        "cpu_mops": cpu_mops,
        "samples": {
            "vollib": VOLLIB_SAMPLE,
            "quantlib": QUANTLIB_SAMPLE,
            "vollib_iv": VOLLIB_IV_SAMPLE,
        },
        "timing": f"wall clock, best of {REPEATS} (anchors: best of {ANCHOR_REPEATS}), 1 thread",
        "load_average_at_start": load,
        "seed": SEED,
        "versions": _versions(),
    }
    if vollib_note:
        result["vollib_note"] = vollib_note
    if quantlib_note:
        result["quantlib_note"] = quantlib_note
    write_result("greeks", result, "make bench  (python -m bench.greeks)")
    _print_table(result)
    return result


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _print_table(r: dict[str, Any]) -> None:
    rows = [
        ("Greeks, vs plain numpy (norm.cdf)", r["kappa_mops"], r["plain_numpy_mops"]),
        ("Greeks, vs plain numpy (ndtr)", r["kappa_mops"], r["plain_ndtr_mops"]),
        ("Greeks, vs vollib (scalar loop)", r["kappa_mops"], r["vollib_mops"]),
        ("Greeks, vs QuantLib (scalar loop)", r["kappa_mops"], r["quantlib_mops"]),
        ("implied vol, vs vollib (scalar loop)", r["iv_mops"], r["vollib_iv_mops"]),
    ]
    print(f"{'M options/s (1,000,000 options)':40s} {'kappa':>9s} {'anchor':>9s} {'ratio':>9s}")
    for name, ours, anchor in rows:
        ratio = None if not anchor else ours / anchor
        print(f"{name:40s} {ours:9.3f} {_fmt(anchor):>9s} {_fmt(ratio, '.1f'):>9s}")
    print(
        f"iv_max_abs_err (|d1| < 4, {r['iv_core_fraction']:.0%} of the book): "
        f"{r['iv_max_abs_err']:.2e}   targets: ratio >= 2, iv_mops >= 5, err <= 1e-10"
    )
    cpu = r["cpu_mops"]
    print(
        f"in CPU time: kappa {cpu['kappa']:.2f}, plain numpy {cpu['plain_numpy']:.2f} "
        f"(ratio {cpu['kappa'] / cpu['plain_numpy']:.1f}), implied vol {cpu['iv']:.2f} M/s"
    )
    print(f"load average at start: {_fmt(r['load_average_at_start'], '.2f')}  -> {RESULTS}")


if __name__ == "__main__":
    main()
