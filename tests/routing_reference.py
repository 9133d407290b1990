"""The routing reference: a generic KKT solve of the optimal split in mpmath, from nothing but
each pool's first and second derivatives (it never uses keeper/routing.py's closed form).

Used by tests/unit/keeper/test_routing.py and by bench/routing.py (its `reference` anchor); it
lives with the tests so that the benches import the tests' references and never the reverse.
Pools are (x, y, g): input reserve, output reserve, 1 - fee; out(a) = y g a / (x + g a).
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

DPS = 50

Pool = tuple[mp.mpf, mp.mpf, mp.mpf]  # (x, y, g)


def out(pool: Pool, a: mp.mpf) -> mp.mpf:
    x, y, g = pool
    return y * g * a / (x + g * a) if a > 0 else mp.mpf(0)


def _d1(pool: Pool, a: mp.mpf) -> mp.mpf:
    x, y, g = pool
    return g * x * y / (x + g * a) ** 2


def _d2(pool: Pool, a: mp.mpf) -> mp.mpf:
    x, y, g = pool
    return -2 * g * g * x * y / (x + g * a) ** 3


def _newton_bisect(fun, lo: mp.mpf, hi: mp.mpf, tol: mp.mpf) -> mp.mpf:
    """Root of a decreasing function on [lo, hi] (fun(lo) > 0 > fun(hi)) by Newton's method
    safeguarded with bisection (Numerical Recipes' rtsafe): a Newton step that leaves the
    bracket or does not halve the step before it is replaced by a bisection. `fun` returns
    (value, derivative)."""
    u = (lo + hi) / 2
    dx_old = hi - lo
    dx = dx_old
    for _ in range(400):
        val, der = fun(u)
        if val == 0:
            return u
        if val > 0:
            lo = u
        else:
            hi = u
        newton = u - val / der if der != 0 else None
        if newton is None or not lo < newton < hi or abs(2 * val) > abs(dx_old * der):
            dx_old, dx = dx, (hi - lo) / 2
            u = lo + dx
        else:
            dx_old, dx = dx, u - newton
            u = newton
        if abs(dx) <= tol * (1 + abs(u)):
            return u
    raise RuntimeError("reference solver did not converge")


def _leg_at_level(pool: Pool, lam: mp.mpf, tol: mp.mpf) -> mp.mpf:
    """Solve out'(a) = lam for a >= 0 (0 when out'(0) <= lam) as the root of
    psi(a) = log out'(a) - log lam, which decreases in a for any concave out; the bracket's top
    is found by doubling."""
    if _d1(pool, mp.mpf(0)) <= lam:
        return mp.mpf(0)
    up = mp.mpf(1)
    while _d1(pool, up) > lam:
        up *= 2
    log_lam = mp.log(lam)

    def psi(a: mp.mpf) -> tuple[mp.mpf, mp.mpf]:
        d1 = _d1(pool, a)
        return mp.log(d1) - log_lam, _d2(pool, a) / d1

    return _newton_bisect(psi, mp.mpf(0), up, tol)


def reference_split(amount: float, x: np.ndarray, y: np.ndarray, fees: np.ndarray) -> list[mp.mpf]:
    """Generic KKT solve in mpmath: find lambda with sum_i a_i(lambda) = amount, where a_i solves
    out_i'(a) = lambda (0 when out_i'(0) <= lambda). Uses only out' and out'' (no closed form);
    both levels are safeguarded Newton iterations (`_newton_bisect`) to ~1e-40 relative."""
    with mp.workdps(DPS):
        pools = [
            (mp.mpf(xi), mp.mpf(yi), 1 - mp.mpf(fi)) for xi, yi, fi in zip(x, y, fees, strict=True)
        ]
        big_a = mp.mpf(amount)
        tol = mp.mpf(10) ** (-(DPS - 10))
        # Bracket for u = log(lambda): at the top nobody trades (sum = 0 < amount); at the
        # bottom the pool with the flattest curve alone takes at least the whole amount.
        hi = mp.log(max(_d1(p, mp.mpf(0)) for p in pools))
        lo = mp.log(min(_d1(p, big_a) for p in pools))
        legs: list[mp.mpf] = []

        def excess(u: mp.mpf) -> tuple[mp.mpf, mp.mpf]:
            nonlocal legs
            lam = mp.exp(u)
            legs = [_leg_at_level(p, lam, tol) for p in pools]
            # d(sum a_i)/du = lambda * sum 1/out_i''(a_i) over the legs that trade.
            slope = lam * mp.fsum(1 / _d2(p, a) for p, a in zip(pools, legs, strict=True) if a > 0)
            return mp.fsum(legs) - big_a, slope

        u = _newton_bisect(excess, lo, hi, tol)
        excess(u)
        return legs
