"""Derive the constants and rational-approximation coefficients of contracts/math/*.vy.

Run with `python -m tools.fit_math` (needs mpmath; about 20 s). It prints Vyper constant
declarations in Q96 (value * 2**96, rounded to nearest) and the maximum relative error of each
fit on a dense grid. The coefficients in the contracts were produced by this script; rerunning
it reproduces them.

Fits (near-minimax, by Loeb's linearised least squares with Lawson reweighting, 80 digits):
- Mills ratio R(x) = (1 - Phi(x)) / phi(x) on [0, 9] as P9(x) / Q10(x), relative error ~1e-19,
  with 1/sqrt(2 pi) folded into P. Used by normal.cdf and black76: the upper tail is
  e^(-x^2/2) * P(x) / Q(x), so a CDF needs one exponential and one division.
- atanh(s) / s as P3(z) / Q3(z) in z = s*s for |s| <= (sqrt2 - 1) / (sqrt2 + 1), relative
  error ~2e-19. Used by wad.ln_wad on the mantissa m in [1/sqrt2, sqrt2):
  ln m = 2 atanh((m - 1) / (m + 1)).
The exponential uses the [6/6] Pade approximant of e^r (exact rational coefficients, no fit):
on |r| <= ln2/2 its relative error is below 2e-19.
"""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 80
Q96 = mp.mpf(2) ** 96


def rational_fit(f, a, b, m: int, n: int, iters: int = 40, nodes: int = 240):
    """Near-minimax relative-error fit f ~ P_m / Q_n on [a, b] with Q(0) = 1."""
    xs = [
        (a + b) / 2 + (b - a) / 2 * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / nodes)
        for k in range(nodes)
    ]
    fs = [f(x) for x in xs]
    weights = [mp.mpf(1)] * nodes
    q_prev = None
    p = q = []
    for _ in range(iters):
        rows, rhs = [], []
        for w, x, fx in zip(weights, xs, fs, strict=True):
            qx = 1 if q_prev is None else mp.polyval(q_prev[::-1], x)
            s = w / (fx * qx)
            rows.append(
                [s * x**j for j in range(m + 1)] + [-s * fx * x**j for j in range(1, n + 1)]
            )
            rhs.append(s * fx)
        sol = mp.qr_solve(mp.matrix(rows), mp.matrix(rhs))[0]
        p = [sol[j] for j in range(m + 1)]
        q = [mp.mpf(1)] + [sol[m + j] for j in range(1, n + 1)]
        q_prev = q
        errs = [
            (mp.polyval(p[::-1], x) / mp.polyval(q[::-1], x) - fx) / fx
            for x, fx in zip(xs, fs, strict=True)
        ]
        weights = [w * abs(e) ** 0.5 for w, e in zip(weights, errs, strict=True)]
        total = sum(weights)
        weights = [w / total * nodes for w in weights]
    dense = [a + (b - a) * k / 4000 for k in range(4001)]
    worst = max(abs(mp.polyval(p[::-1], x) / mp.polyval(q[::-1], x) / f(x) - 1) for x in dense)
    return p, q, worst


def q96(v) -> int:
    return int(mp.nint(v * Q96))


def main() -> None:
    print(f"LN2_Q96 = {q96(mp.log(2))}")
    print(f"LN_1E18_Q96 = {q96(mp.log(10) * 18)}")
    print(f"SQRT2_Q96 = {q96(mp.sqrt(2))}")
    print(f"EXP_MIN = {int(mp.floor(mp.log(mp.mpf('0.5e-18')) * 10**18))}")
    print(f"LN_1E18_WAD = {int(mp.nint(mp.log(10) * 18 * 10**18))}")
    print(f"EXP_MAX = {int(mp.floor(mp.log((mp.mpf(2) ** 255 - 1) / 10**18) * 10**18))}")
    print(f"INV_SQRT_2PI_WAD = {int(mp.nint(10**18 / mp.sqrt(2 * mp.pi)))}")

    def mills(x):
        return mp.erfc(x / mp.sqrt(2)) / 2 / (mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi))

    p, q, worst = rational_fit(mills, mp.mpf(0), mp.mpf(9), 9, 10)
    print(f"# Mills ratio P9/Q10 on [0, 9]: max relative error {mp.nstr(worst, 3)}")
    # normal.cdf folds 1/sqrt(2 pi) into P, so phi(x) * R(x) = e^(-x^2/2) * P'(x) / Q(x).
    inv_sqrt_2pi = 1 / mp.sqrt(2 * mp.pi)
    for i, c in enumerate(p):
        print(f"MILLS_P{i} = {q96(c * inv_sqrt_2pi)}")
    for i, c in enumerate(q):
        print(f"MILLS_Q{i} = {q96(c)}")

    zmax = ((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)) ** 2 * mp.mpf("1.0001")

    def atanh_ratio(z):
        return mp.atanh(mp.sqrt(z)) / mp.sqrt(z) if z > 0 else mp.mpf(1)

    p, q, worst = rational_fit(atanh_ratio, mp.mpf(0), zmax, 3, 3)
    print(f"# atanh(s)/s as P3/Q3 in z = s^2: max relative error {mp.nstr(worst, 3)}")
    for i, c in enumerate(p):
        print(f"ATANH_P{i} = {q96(c)}")
    for i, c in enumerate(q):
        print(f"ATANH_Q{i} = {q96(c)}")


if __name__ == "__main__":
    main()
