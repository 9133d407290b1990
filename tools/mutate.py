"""Mutation testing of the Kappa contracts: how many small bugs does the test suite catch?

Run with `make mutate` (or `python tools/mutate.py --help`). It writes
`bench/results/mutation.json`: `mutants` (valid mutants run), `killed`, `kill_rate`, the per-file
counts and every surviving mutant with its file, line, original and mutated text and, where one
has been worked out, the reason it survives (`explanation`, from `EXPLAINED` below).

What it does, in order:

1. Copy the checkout to a temporary folder (without .git, .venv, node_modules and caches, which
   are symlinked) and work only there: the working tree is never written to, so contracts being
   edited by someone else are never touched. Each mutant is written into the copy and the
   original text is restored right after its run (try/finally); the copy is deleted on exit
   (atexit). `--contracts-rev REV` takes `contracts/` from a git revision instead of the working
   tree (read-only `git archive`), for runs while contracts are mid-edit.
2. Generate candidate mutants of every file in `TARGETS` with universalmutator's regular
   expression engine (PyPI `universalmutator`, pinned in constraints.txt; nothing is downloaded at
   run time): its `universal.rules` (arithmetic, comparison, boolean and bitwise operator swaps,
   numeric constant tweaks: 0, 1, -1, n+1, n-1, ...) and `python.rules` (negated conditions,
   and/or swaps, statement deletion as `pass`, which also deletes asserts, `True` to `False`,
   decorator removal, ...) plus `KAPPA_RULES` below (Vyper's `unsafe_*` builtins, shifts,
   augmented assignments, `False` to `True`). Its `solidity.rules`, which universalmutator also
   applies to `.vy` files, are left out: they rewrite Solidity syntax (`memory`, `wei`,
   `selfdestruct`, ...) and on Vyper only produce mutants that do not compile. Docstrings,
   comments, imports and module declarations are not mutated, nor are string literals alone
   (revert reasons).
3. Sample deterministically (`--seed`): each file gets a quota of valid mutants proportional to
   its code lines times `Target.weight` (at least `--min-per-file`) out of `--budget`; the
   candidates are visited line by line in a seeded random order (one candidate per line per
   round), so the sample spreads over the code instead of piling on constant-dense lines.
4. Run each mutant in a child forked from a parent that has already imported titanoboa, vyper,
   pytest and hypothesis (saves ~5 s of start-up per mutant). The child compiles the file's
   `hosts` (the contracts that compile the mutated module) with titanoboa: a compile error makes
   the mutant *invalid* (not counted); bytecode identical to the unmutated build (CBOR metadata
   stripped) makes it *equivalent* (not counted: no test can tell them apart), and so does a
   mechanical rule (`rule_equivalent`: an initial value that a tuple assignment overwrites
   unread, swapped arguments of a commutative builtin), checked before compiling
   (`equivalent_rule`; the bytecode differs only in evaluation order). Otherwise the
   child runs `pytest -x -q -p no:cacheprovider <tests>` over the file's fast tests: a failure
   kills the mutant, a pass means it survived; a run over `timeout` (3x the unmutated run, at
   least 60 s) is killed as a timeout. One child runs at a time (the machine is small).
   Before its mutants, every file's tests run once unmutated: if they fail (say the contract is
   mid-edit) the file is skipped and listed under `skipped`.

Compiled contracts go to a titanoboa disk cache inside the temporary copy (warmed by the
unmutated runs), so mutant builds never fill ~/.cache/titanoboa.

Survivors: add a test that kills it (tests/unit/test_mutants_<area>.py, listed in `TARGETS`) or,
for an equivalent mutant, an entry in `EXPLAINED`; then `--recheck bench/results/mutation.json`
re-runs only the survivors with the current tests and rewrites the file (same mutants; a full
rerun with the same seed samples the same ones). `kill_rate` is the raw rate;
`kill_rate_excluding_equivalent` leaves out survivors explained as equivalent.

Options: `--files` (substrings of the paths to mutate), `--budget`, `--min-per-file`, `--seed`,
`--max-minutes` (stop sampling new mutants after this wall time), `--out`, `--keep` (keep the
copy), `--list` (print the plan and the candidate counts, run nothing). A run with `--files`
writes no result file unless `--out` is given.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = "bench/results/mutation.json"

# Child exit codes besides pytest's own (0 passed, 1 failed, 2 interrupted, 3 internal error,
# 4 usage error, 5 no tests collected).
EXIT_INVALID = 90  # a host failed to compile
EXIT_EQUIVALENT = 91  # every host compiled to the unmutated bytecode
EXIT_CRASH = 92  # the child raised outside pytest


@dataclass(frozen=True)
class Target:
    """A file to mutate: the contracts that compile it and the tests that should catch its bugs.

    hosts: contracts compiled for the validity and equivalence check (the file itself for a
        contract; for a module, contracts that import it and between them use all of it).
    tests: test files, fastest and most specific first (pytest stops at the first failure).
        Missing files are dropped (e.g. tests/unit/test_mutants_*.py not yet written).
    weight: multiplies the file's code-line count in the quota (MarginEngine's and Liquidator's
        tests take ~3x longer than the others', so they get 0.35; the Liquidator, which guards
        solvency, gets 0.5 so that its sample is not thin).
    """

    hosts: tuple[str, ...]
    tests: tuple[str, ...]
    weight: float = 1.0


U = "tests/unit/"
MATH_TESTS = (U + "math/test_wad.py", U + "math/test_normal.py", U + "math/test_black76.py")
ENGINE_TESTS = (
    U + "margin/test_portfolio_cases.py",
    U + "margin/test_margin_engine.py",
    U + "margin/test_engine_swap.py",
    U + "margin/test_margin_rule_soundness.py",
    # The liquidation hooks (move_portfolio, move_cash, socialize_loss) are tested there.
    U + "liquidation/test_liquidation.py",
)
MIRROR = "tests/differential/test_margin_mirror_vs_contract.py"
TARGETS: dict[str, Target] = {
    "contracts/math/wad.vy": Target(
        (
            "tests/contracts/PricingLens.vy",
            "contracts/oracle/VolOracle.vy",
            "contracts/margin/RiskCalculator.vy",
            "contracts/liquidation/Liquidator.vy",
        ),
        (
            *MATH_TESTS,
            U + "math/test_black76_edges.py",
            U + "oracle/test_vol_oracle.py",
            U + "margin/test_risk_rounding.py",
            U + "liquidation/test_liquidation.py",
        ),
    ),
    "contracts/math/normal.vy": Target(
        ("tests/contracts/PricingLens.vy",),
        (U + "math/test_normal.py", U + "math/test_black76.py", U + "math/test_black76_edges.py"),
    ),
    "contracts/math/black76.vy": Target(
        ("tests/contracts/PricingLens.vy",),
        (U + "math/test_black76.py", U + "math/test_black76_edges.py"),
    ),
    "contracts/math/smile.vy": Target(
        ("tests/contracts/PricingLens.vy", "contracts/oracle/VolOracle.vy"),
        (U + "math/test_smile.py", U + "oracle/test_vol_oracle.py"),
    ),
    "tests/contracts/PricingLens.vy": Target(("tests/contracts/PricingLens.vy",), MATH_TESTS),
    "contracts/margin/positions.vy": Target(
        ("contracts/margin/RiskCalculator.vy", "contracts/margin/MarginEngine.vy"),
        (U + "margin/test_risk_rounding.py", U + "margin/test_health_floor.py", *ENGINE_TESTS[:2]),
    ),
    "contracts/margin/risk.vy": Target(
        ("contracts/margin/RiskCalculator.vy",),
        (U + "margin/test_risk_rounding.py", *ENGINE_TESTS[:2], MIRROR),
    ),
    "contracts/margin/params.vy": Target(
        ("contracts/margin/RiskCalculator.vy", "contracts/margin/MarginEngine.vy"),
        (U + "margin/test_risk_rounding.py", U + "margin/test_margin_engine.py"),
    ),
    # RiskCalculator uses pack_params (pack_interest_params); MarginEngine all the rest.
    "contracts/margin/interest.vy": Target(
        ("contracts/margin/RiskCalculator.vy", "contracts/margin/MarginEngine.vy"),
        (
            U + "margin/test_cash_interest.py",
            "tests/property/test_cash_buffer_properties.py",
            U + "margin/test_margin_engine.py",
        ),
    ),
    "contracts/margin/RiskCalculator.vy": Target(
        ("contracts/margin/RiskCalculator.vy",),
        (U + "margin/test_risk_rounding.py", *ENGINE_TESTS[:2], MIRROR),
    ),
    "contracts/margin/orders.vy": Target(
        ("tests/contracts/OrdersHarness.vy",),
        (U + "margin/test_orders.py", U + "test_mutants_orders.py"),
    ),
    "contracts/margin/perp.vy": Target(
        ("tests/contracts/PerpHarness.vy", "contracts/margin/PerpBook.vy"),
        (U + "margin/test_perp.py", U + "margin/test_perp_book.py"),
    ),
    "contracts/margin/PerpBook.vy": Target(
        ("contracts/margin/PerpBook.vy",),
        (U + "margin/test_perp_book.py", "tests/fuzz/stateful/test_perp.py"),
    ),
    "contracts/auth/ownable.vy": Target(
        ("contracts/oracle/VolOracle.vy", "contracts/oracle/OracleAggregator.vy"),
        (U + "oracle/test_vol_oracle.py", U + "oracle/test_oracle_aggregator.py"),
    ),
    "contracts/oracle/OracleAggregator.vy": Target(
        ("contracts/oracle/OracleAggregator.vy",),
        (
            U + "oracle/test_sequencer_guard.py",
            U + "oracle/test_oracle_aggregator.py",
            U + "oracle/test_oracle_sources_soundness.py",
            U + "oracle/test_oracle_settlement.py",
            U + "test_mutants_oracle.py",
        ),
    ),
    "contracts/oracle/VolOracle.vy": Target(
        ("contracts/oracle/VolOracle.vy",),
        (U + "oracle/test_vol_oracle.py", U + "test_mutants_vol.py"),
    ),
    "contracts/venues/ConstantProductPool.vy": Target(
        ("contracts/venues/ConstantProductPool.vy",),
        (
            U + "venues/test_pool.py",
            U + "venues/test_router.py",
            U + "oracle/test_twap_feed.py",
            U + "venues/test_router_edges.py",
        ),
    ),
    "contracts/venues/Router.vy": Target(
        ("contracts/venues/Router.vy",),
        (U + "venues/test_router.py", U + "venues/test_router_edges.py"),
    ),
    "contracts/oracle/PoolTwapFeed.vy": Target(
        ("contracts/oracle/PoolTwapFeed.vy",),
        (U + "oracle/test_twap_feed.py", U + "venues/test_router_edges.py"),
    ),
    "contracts/margin/MarginEngine.vy": Target(
        ("contracts/margin/MarginEngine.vy",),
        (*ENGINE_TESTS, U + "test_mutants_engine.py"),
        weight=0.35,
    ),
    "contracts/liquidation/Liquidator.vy": Target(
        ("contracts/liquidation/Liquidator.vy",),
        (U + "liquidation/test_liquidation.py", U + "test_mutants_liquidator.py"),
        weight=0.5,
    ),
}

# Vyper-specific operators universalmutator's rule files do not cover.
KAPPA_RULES = r"""
unsafe_add ==> unsafe_sub
unsafe_sub ==> unsafe_add
unsafe_mul ==> unsafe_div
unsafe_div ==> unsafe_mul
>> ==> <<
<< ==> >>
\+= ==> -=
-= ==> +=
False ==> True
"""
RULE_FILES = ("universal.rules", "python.rules")

# Lines never mutated: declarations a mutation can only break (they would compile-fail anyway).
SKIP_LINE = re.compile(
    r"^\s*(#|from\s|import\s|implements:|initializes:|uses:|exports:|event\s|struct\s|"
    r"interface\s|flag\s)"
)

# Survivors whose reason is known, keyed by (file, original line, mutated line), both stripped.
_B76 = "contracts/math/black76.vy"
_ROUTER = "contracts/venues/Router.vy"
_COMMUTES = "equivalent: the operands of a commutative builtin are swapped"
_SYMMETRIC = (
    "equivalent: _check_pair accepts (token_in, token_out) in either order, so swapping "
    "the two arguments (or parameters) changes nothing"
)
_OVERWRITTEN = (
    "equivalent: Vyper needs a declared value before a tuple assignment; this initial value is "
    "overwritten by the tuple assignment that follows before anything reads it"
)
_POOL = "contracts/venues/ConstantProductPool.vy"
_TWAP = "contracts/oracle/PoolTwapFeed.vy"
_ORDERS = "contracts/margin/orders.vy"
_BOTH_RESERVES = (
    "equivalent: the reserves are both zero (empty pool) or both non-zero (the first deposit "
    "locks MINIMUM_LIQUIDITY and a swap cannot take a whole reserve), so r0 is never 0 "
    "while r1 is not"
)
EXPLAINED: dict[tuple[str, str, str], str] = {
    ("contracts/margin/perp.vy", "return market.index", "pass"): (
        "equivalent: with now == funding_time the general path adds an increment times dt = 0; "
        "the early return only saves gas"
    ),
    ("contracts/margin/MarginEngine.vy", "if value_in > value_out:", "if value_in >= value_out:"): (
        "equivalent: at value_in == value_out both branches leave the swap's loss at 0"
    ),
    (
        "contracts/liquidation/Liquidator.vy",
        "if mtm <= dust:",
        "if mtm < dust:",
    ): "equivalent: at MtM == "
    "dust the mutant goes on to the cap, but every later branch returns `wanted` too (cap >= 1, "
    "or a remainder MtM (1 - taken) <= MtM = dust), so the fraction taken is the same",
    (
        "contracts/liquidation/Liquidator.vy",
        "def _floor_mul(x: int256, y: int256) -> int256:",
        "def _floor_mul ( y: int256,x: int256) -> int256:",
    ): "equivalent: swapping the parameters of a product",
    (
        "contracts/liquidation/Liquidator.vy",
        'assert self._auctions[account] == 0, "liquidator: auction open"',
        'assert self._auctions[account] <= 0, "liquidator: auction open"',
    ): "equivalent: the packed auction is a uint256",
    (
        "contracts/liquidation/Liquidator.vy",
        "if witness == NO_WITNESS:",
        "if witness >= NO_WITNESS:",
    ): (
        "equivalent: NO_WITNESS is max_value(uint256), so no witness exceeds it and >= agrees "
        "with =="
    ),
    (
        "contracts/math/smile.vy",
        "return (entry >> 96) & MASK_96 == SKEW_ZERO",
        "return (entry >> 96) | MASK_96 == SKEW_ZERO",
    ): "equivalent in effect: is_flat only lets the VolOracle skip the ln of a zero-skew entry; "
    "answering False computes an ln that the zero skew multiplies away, so only the gas differs",
    (
        "contracts/oracle/VolOracle.vy",
        "change: uint256 = 0",
        "change: uint256 = 1",
    ): "equivalent: both branches of the if that follows assign change before it is read",
    (_POOL, "if dt != 0 and r0 != 0 and r1 != 0:", "if dt != 0 and r0 >= 0 and r1 != 0:"): (
        _BOTH_RESERVES
    ),
    (_POOL, "if r0 == 0:", "if r0 <= 0:"): "equivalent: r0 is a uint256",
    (_ORDERS, "return _CACHED_DOMAIN_SEPARATOR", "pass"): "equivalent in effect: without the "
    "early return the function rebuilds the separator from the same chain id and address, "
    "which is the cached value; only the gas differs",
    (
        _ORDERS,
        'assert len(signature) == 65, "orders: bad signature length"',
        'assert len(signature) >= 65, "orders: bad signature length"',
    ): "equivalent: the signature is a Bytes[65], so its length is at most 65 and == 65 and "
    ">= 65 agree",
    (_TWAP, "break", "continue"): "equivalent: both breaks of the scan end it once every later "
    "step would do nothing (k >= stored stays true as k grows; timestamps increase along the "
    "ring, so a too-recent observation is followed only by more recent ones), so continuing "
    "only spends gas",
    (
        "contracts/math/wad.vy",
        "LN_1E18_Q96: constant(int256) = 3283732547111784853622338894909",
        "LN_1E18_Q96: constant(int256) = (3283732547111784853622338894909+1)",
    ): "equivalent at wad precision: one Q96 ulp (1.3e-29) moves ln_wad by 1e-11 wei before "
    "its rounding to a wad; only an input whose exact log lies within 1e-11 wei of a half-wei "
    "boundary could tell, and the constant is ln(1e18) rounded to nearest either way",
    (
        _B76,
        "def total_vol(sigma: int256, sqrt_tau: int256) -> int256:",
        "def total_vol ( sqrt_tau: int256,sigma: int256) -> int256:",
    ): "equivalent: total_vol only multiplies its two parameters, so swapping them changes nothing",
    (_B76, "e1: int256 = 0", "e1: int256 = -1"): "equivalent: e1 keeps its initial value only "
    "when |d1| >= 9, where combo stays 0 and e1 is used only in e1 * combo",
    (_B76, "combo: int256 = 0", "combo: int256 = (0-1)"): "equivalent: combo keeps its initial "
    "value only when |d1| >= 9, where e1 stays 0 and combo is used only in e1 * combo",
    (_B76, "a1 = unsafe_sub(0, d1)", "a1 = unsafe_sub((0+1), d1)"): "equivalent at wad precision: "
    "the Mills ratio's argument moves by 1 wei (1e-18), which moves the price by ~1e-18 of F "
    "before rounding, within the documented 3e-18 F error; no test can pin it without pinning "
    "rounding noise",
    (
        _ROUTER,
        "def _check_pair(pool: address, token_in: address, token_out: address):",
        "def _check_pair(pool: address , token_out: address, token_in: address):",
    ): _SYMMETRIC,
    (
        _ROUTER,
        "self._check_pair(pools[i], token_in, token_out)",
        "self._check_pair(pools[i] , token_out, token_in)",
    ): _SYMMETRIC,
    (
        _ROUTER,
        "self._check_pair(pool, token_in, token_out)",
        "self._check_pair(pool , token_out, token_in)",
    ): _SYMMETRIC,
    (_ROUTER, "if j >= len(pools):", "if j == len(pools):"): "equivalent: j counts up by one "
    "from i + 1 <= len(pools), so it reaches len(pools) exactly before it could exceed it",
    (_ROUTER, "break", "continue"): "equivalent: after j reaches len(pools) every later j "
    "also satisfies j >= len(pools), so continuing only spends gas on empty iterations",
    (_ROUTER, "if amount == 0:", "if amount <= 0:"): "equivalent: amount is a uint256",
    ("contracts/margin/risk.vy", "if product < 0:", "if product <= 0:"): "equivalent: for a "
    "zero product the extra step computes (0 - (1e18 - 1)) / 1e18, which truncates to 0 as well",
    ("contracts/margin/risk.vy", "if p.settlement != 0:", "if p.settlement > 0:"): "equivalent: "
    "the engine fills settlement from a uint256 oracle price (never negative) and 0 means not "
    "settled, so != 0 and > 0 agree on every value the engine can pass",
    (_ROUTER, "if allowed != 0:", "if allowed >= 0:"): "equivalent in effect: with a zero "
    "allowance the mutant adds an approve(pool, 0) that sets what is already there; only the "
    "token's extra Approval event tells",
}


# Survivors of lines whose text recurs in the file (a bare `return`), keyed by (file, the line
# before, original, mutated), all stripped.
_EARLY_EXIT = (
    "equivalent in effect: the early return is a gas shortcut; without it the full check runs "
    "on an account with no positions and non-negative cash, whose H_IM is that cash plus its "
    "haircut collateral (no contingency without shorts), never negative, so it passes as well "
    "(the fill or swap has already read the oracle, so no new revert is possible)"
)
EXPLAINED_AFTER: dict[tuple[str, str, str, str], str] = {
    (
        "contracts/margin/MarginEngine.vy",
        "if len(after.positions) == 0 and after.cash >= 0:",
        "return",
        "pass",
    ): _EARLY_EXIT,
    (
        "contracts/liquidation/Liquidator.vy",
        "if cap >= IWAD:",
        "return wanted",
        "pass",
    ): "equivalent: "
    "falling through takes min(wanted, cap) = wanted (wanted <= 1e18 <= cap), and the dust check "
    "that follows returns wanted either way",
}


@dataclass
class Mutant:
    file: str
    line: int
    original: str
    mutated: str
    rule: str
    status: str = "pending"
    seconds: float = 0.0
    killed_by: str = ""
    explanation: str = ""


@dataclass
class FileReport:
    file: str
    code_lines: int
    quota: int
    candidates: int
    tests: list[str]
    mutants: int = 0
    killed: int = 0
    survived: int = 0
    invalid: int = 0
    equivalent: int = 0
    equivalent_rule: int = 0
    timeouts: int = 0
    baseline_s: float = 0.0
    skipped: str = ""
    results: list[Mutant] = field(default_factory=list)


# --- candidates ---------------------------------------------------------------------------


def code_lines(source: str) -> list[bool]:
    """Per line: True for code, False for blank, comment, docstring and declaration lines."""
    out: list[bool] = []
    in_doc = False
    for line in source.split("\n"):
        s = line.strip()
        if in_doc:
            out.append(False)
            in_doc = '"""' not in s
            continue
        if s.startswith('"""'):
            out.append(False)
            in_doc = s.count('"""') == 1
            continue
        out.append(bool(s) and not SKIP_LINE.match(line) and not s.startswith("# pragma"))
    return out


def candidates(path: Path, rel: str, rules_dir: Path) -> list[Mutant]:
    """Every universalmutator mutant of the file's code lines (one changed line each)."""
    from universalmutator import mutator

    source = path.read_text()
    mask = code_lines(source)
    lines = source.split("\n")
    masked = [(line if keep else "") + "\n" for line, keep in zip(lines, mask, strict=True)]
    rule_files = [*RULE_FILES, str(rules_dir / "kappa.rules")]
    with contextlib.redirect_stdout(io.StringIO()):
        raw = mutator.mutants_regexp(
            masked, ruleFiles=rule_files, ignorePatterns=[], ignoreStringOnly=True
        )
    out = []
    for lineno, text, rule_used, _ in raw:
        mutated = text.rstrip("\n")
        original = lines[lineno - 1]
        if mutated.strip() == original.strip() or in_identifier(original, mutated):
            continue
        out.append(Mutant(rel, lineno, original, mutated, rule_used[0]))
    return out


def in_identifier(original: str, mutated: str) -> bool:
    """True when the first change is to the digits of a name (uint256 -> uint0, bytes32, ...):
    universalmutator's numeric rules match those, and they never compile."""
    i = next(
        (k for k, (a, b) in enumerate(zip(original, mutated, strict=False)) if a != b),
        min(len(original), len(mutated)),
    )
    return (
        0 < i < len(original)
        and original[i].isdigit()
        and (original[i - 1].isalnum() or original[i - 1] == "_")
    )


def parses(source: str) -> bool:
    """Vyper's parser accepts the source (a cheap first filter, run in the parent)."""
    from vyper.ast import parse_to_ast

    try:
        parse_to_ast(source)
    except Exception:  # any syntax error makes the mutant invalid
        return False
    return True


def sample_order(cands: list[Mutant], seed: str) -> list[Mutant]:
    """A seeded order visiting the lines round-robin (random line order, random pick per line)."""
    rng = random.Random(seed)
    by_line: dict[int, list[Mutant]] = {}
    for m in cands:
        by_line.setdefault(m.line, []).append(m)
    line_order = sorted(by_line)
    rng.shuffle(line_order)
    for ms in by_line.values():
        rng.shuffle(ms)
    out: list[Mutant] = []
    while any(by_line[ln] for ln in line_order):
        for ln in line_order:
            if by_line[ln]:
                out.append(by_line[ln].pop())
    return out


# --- the working copy ---------------------------------------------------------------------

COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    ".vvm",
    ".build",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
    "__pycache__",
    "*.egg-info",
    "reports",
)
LINKED = (".venv", ".vvm", "node_modules")


def make_copy(rev: str | None, keep: bool) -> Path:
    """Copy the checkout to a temporary folder (deleted at exit unless keep)."""
    root = Path(tempfile.mkdtemp(prefix="kappa-mutate-"))
    if not keep:
        atexit.register(shutil.rmtree, root, True)
    work = root / "repo"
    shutil.copytree(REPO, work, ignore=COPY_IGNORE, symlinks=True)
    for name in LINKED:
        if (REPO / name).exists():
            (work / name).symlink_to(REPO / name)
    if rev is not None:
        shutil.rmtree(work / "contracts")
        blob = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", rev, "contracts"],
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            tar.extractall(work, filter="data")
    return work


# --- the fork server ----------------------------------------------------------------------


def preload() -> None:
    """Import the heavy libraries once in the parent; forked children inherit them."""
    import boa
    import hypothesis  # noqa: F401
    import numpy  # noqa: F401
    import pytest  # noqa: F401

    with contextlib.suppress(ImportError):
        import eth_account  # noqa: F401
        import mpmath  # noqa: F401
    boa.interpret.set_cache_dir(str(Path.cwd() / ".boa-cache"))


def run_forked(fn: Callable[[], int], log: Path, timeout: float) -> tuple[str | int, float]:
    """Run fn in a forked child (own session, output to log); its exit code, or "timeout"."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child
        code = EXIT_CRASH
        try:
            os.setsid()
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            code = fn()
        except BaseException:  # report anything as a crash
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), time.monotonic() - start
        if time.monotonic() - start > timeout:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", time.monotonic() - start
        time.sleep(0.05)


def strip_metadata(code: bytes) -> bytes:
    """Initcode without its CBOR metadata trailer (its last two bytes give its length)."""
    if len(code) < 2:
        return code
    n = int.from_bytes(code[-2:], "big")
    return code[: -(n + 2)] if n + 2 <= len(code) else code


def build_digest(work: Path, hosts: tuple[str, ...]) -> dict[str, str]:
    """Compile the hosts with titanoboa (as tests.conftest.load does); a digest per host."""
    import boa

    boa.interpret.set_search_paths([str(work)])
    out = {}
    for host in hosts:
        path = work / host
        deployer = boa.loads_partial(path.read_text(), name=path.stem, filename=str(path))
        data = deployer.compiler_data
        h = hashlib.sha256(data.bytecode_runtime + b"|" + strip_metadata(data.bytecode))
        out[host] = h.hexdigest()
    return out


def child_job(
    work: Path,
    target: Target,
    tests: list[str],
    baseline: dict[str, str] | None,
    out: Path,
    run_tests: bool = True,
) -> Callable[[], int]:
    """The child's work: compile the hosts, compare with the baseline build, run the tests."""

    def job() -> int:
        import pytest

        try:
            digest = build_digest(work, target.hosts)
        except Exception as exc:  # any compile failure makes the mutant invalid
            print(f"compile error: {type(exc).__name__}: {exc}")
            return EXIT_INVALID
        out.write_text(json.dumps(digest))
        if baseline is not None and digest == baseline:
            return EXIT_EQUIVALENT
        if not run_tests:
            return 0
        return int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", *tests]))

    return job


def first_failure(log: Path) -> str:
    """The first FAILED/ERROR test id in a pytest log."""
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(("FAILED ", "ERROR ")):
                return line.split(" ")[1]
    return ""


# --- the run ------------------------------------------------------------------------------


def plan(work: Path, files: list[str], budget: int, min_per_file: int) -> list[FileReport]:
    """Per file: code lines, tests present, quota."""
    reports = []
    for rel in files:
        src = (work / rel).read_text()
        n = sum(code_lines(src))
        tests = [t for t in TARGETS[rel].tests if (work / t).exists()]
        reports.append(FileReport(rel, n, 0, 0, tests))
    total = sum(r.code_lines * TARGETS[r.file].weight for r in reports if r.tests) or 1.0
    for r in reports:
        share = budget * r.code_lines * TARGETS[r.file].weight / total
        r.quota = max(min_per_file, round(share))
    return reports


_DECLARATION = re.compile(r"^\s*(\w+)\s*:\s*[\w\[\], ]+?\s*=\s*(.+)$")
_TUPLE_TARGETS = re.compile(r"^\s*(\w+(?:\s*,\s*\w+)+)\s*=(?!=)(.*)$")


def overwritten_before_use(lines: list[str], index: int) -> bool:
    """True when line `index` declares a variable that the tuple assignment right after it (past
    other declarations) overwrites without reading it: its initial value cannot matter. Vyper
    needs every tuple-assignment target declared with a value first, so this pattern is common
    (`r0: uint256 = 0` ... `r0, r1, last = self._unpack(...)`)."""
    decl = _DECLARATION.match(lines[index])
    if decl is None:
        return False
    name = decl.group(1)
    word = re.compile(rf"\b{name}\b")
    for k in range(index + 1, len(lines)):
        line = lines[k]
        if _DECLARATION.match(line):
            if word.search(line.split("=", 1)[1]):
                return False  # another declaration reads it
            continue
        targets = _TUPLE_TARGETS.match(line)
        if targets is None or name not in re.split(r"\s*,\s*", targets.group(1).strip()):
            return False
        # The right-hand side, with its continuation lines (until the brackets balance).
        rhs, depth, j = targets.group(2), 0, k
        while True:
            depth += rhs.count("(") + rhs.count("[") - rhs.count(")") - rhs.count("]")
            if word.search(rhs):
                return False
            j += 1
            if depth <= 0 or j >= len(lines):
                return True
            rhs = lines[j]
    return False


COMMUTATIVE = ("unsafe_add", "unsafe_mul", "min", "max")


def _two_args(text: str, open_at: int) -> tuple[int, int, int] | None:
    """For the call whose "(" is at `open_at`: (end of the first argument, start of the
    second, index of the closing ")") when it has exactly two arguments, else None."""
    depth, comma = 0, -1
    for i in range(open_at, len(text)):
        c = text[i]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
            if depth == 0:
                return (comma, comma + 1, i) if comma != -1 else None
        elif c == "," and depth == 1:
            if comma != -1:
                return None
            comma = i
    return None


def commutative_swap(original: str, mutated: str) -> bool:
    """True when `mutated` is `original` with the two arguments of one call to a commutative
    builtin (`COMMUTATIVE`) swapped, whitespace aside: the same value, other bytecode."""
    src, target = re.sub(r"\s+", "", original), re.sub(r"\s+", "", mutated)
    for name in COMMUTATIVE:
        for found in re.finditer(rf"\b{name}\(", src):
            parts = _two_args(src, found.end() - 1)
            if parts is None:
                continue
            comma, second, close = parts
            first_arg, second_arg = src[found.end() : comma], src[second:close]
            swapped = src[: found.end()] + second_arg + "," + first_arg + src[close:]
            if swapped == target and swapped != src:
                return True
    return False


def explain(m: Mutant, source: str) -> str:
    """Why a survivor survives, when known: an `EXPLAINED` entry, an `EXPLAINED_AFTER` entry
    (for a line whose text recurs, keyed by the line before it too), or an initial value that
    a tuple assignment overwrites before use (`overwritten_before_use` on the original source)."""
    known = EXPLAINED.get((m.file, m.original.strip(), m.mutated.strip()), "")
    if known:
        return known
    lines = source.split("\n")
    before = lines[m.line - 2].strip() if m.line >= 2 else ""
    known = EXPLAINED_AFTER.get((m.file, before, m.original.strip(), m.mutated.strip()), "")
    if known:
        return known
    return rule_equivalent(m, source)


def rule_equivalent(m: Mutant, source: str) -> str:
    """The reason when a mechanical rule shows the mutant equivalent (an initial value a tuple
    assignment overwrites unread, or swapped arguments of a commutative builtin), else "".
    Like bytecode-identical mutants, these are not counted or run (`equivalent_rule`)."""
    if overwritten_before_use(source.split("\n"), m.line - 1):
        return _OVERWRITTEN
    if commutative_swap(m.original, m.mutated):
        return _COMMUTES
    return ""


def run_file(work: Path, rep: FileReport, cands: list[Mutant], deadline: float, logs: Path) -> None:
    """Baseline, then mutants of one file until its quota of valid mutants or the deadline."""
    target = TARGETS[rep.file]
    path = work / rep.file
    original = path.read_text()
    digest_file = logs / "digest.json"
    if not rep.tests:
        rep.skipped = "no tests found"
        return
    code, secs = run_forked(
        child_job(work, target, rep.tests, None, digest_file), logs / "baseline.log", 1800
    )
    rep.baseline_s = round(secs, 1)
    if code != 0:
        rep.skipped = f"unmutated tests fail (exit {code}); see the baseline log"
        shutil.copy(logs / "baseline.log", logs / f"baseline-{path.stem}.log")
        print(f"  {rep.file}: SKIPPED, unmutated run exit {code}", flush=True)
        return
    baseline = json.loads(digest_file.read_text())
    timeout = max(60.0, 3 * secs)
    print(f"  {rep.file}: baseline {secs:.1f}s, quota {rep.quota}", flush=True)
    lines = original.split("\n")
    for n, m in enumerate(cands):
        if rep.mutants >= rep.quota or time.monotonic() > deadline:
            break
        mutated = [*lines]
        mutated[m.line - 1] = m.mutated
        text = "\n".join(mutated)
        log = logs / f"{path.stem}-{n:04d}-L{m.line}.log"
        if not parses(text):
            code, secs = EXIT_INVALID, 0.0
        elif reason := rule_equivalent(m, original):
            m.status, m.explanation = "equivalent_rule", reason
            rep.equivalent_rule += 1
            continue
        else:
            job = child_job(work, target, rep.tests, baseline, digest_file)
            try:
                path.write_text(text)
                code, secs = run_forked(job, log, timeout)
            finally:
                path.write_text(original)
        m.seconds = round(secs, 1)
        if code == EXIT_INVALID:
            m.status = "invalid"
            rep.invalid += 1
        elif code == EXIT_EQUIVALENT:
            m.status = "equivalent"
            rep.equivalent += 1
        elif code == 0:
            m.status = "survived"
            m.explanation = explain(m, original)
            rep.mutants += 1
            rep.survived += 1
        elif code == "timeout":
            m.status = "timeout"
            rep.mutants += 1
            rep.killed += 1
            rep.timeouts += 1
        else:
            m.status = "killed" if code == 1 else f"killed (exit {code})"
            m.killed_by = first_failure(log)
            rep.mutants += 1
            rep.killed += 1
        rep.results.append(m)
        if m.status not in ("invalid", "equivalent"):
            print(
                f"    {m.status:>10} {secs:5.1f}s L{m.line}: {m.original.strip()[:50]!r} -> "
                f"{m.mutated.strip()[:50]!r}",
                flush=True,
            )


def recheck(work: Path, result_path: Path, logs: Path) -> dict:
    """Run a result file's survivors again with the current tests (e.g. after adding tests that
    kill them) and return the result with the newly killed ones moved to `killed_mutants`.
    Survivors explained as equivalent are kept without running them.
    The mutant set is unchanged: a full run with the same seed samples the same mutants."""
    result = json.loads(result_path.read_text())
    digest_file = logs / "digest.json"
    baselines: dict[str, dict[str, str]] = {}
    still = []
    for n, s in enumerate(result["survivors"]):
        target = TARGETS[s["file"]]
        tests = [t for t in target.tests if (work / t).exists()]
        path = work / s["file"]
        original = path.read_text()
        lines = original.split("\n")
        if lines[s["line"] - 1] != s["original"]:
            print(f"  {s['file']}:{s['line']} changed since the run; kept as is")
            still.append(s)
            continue
        survivor = Mutant(**{**s, "status": "survived"})
        if rule_equivalent(survivor, original):  # not counted, as a new run would not count it
            result["mutants"] -= 1
            result["files"][s["file"]]["mutants"] -= 1
            result["files"][s["file"]]["survived"] -= 1
            for where in (result, result["files"][s["file"]]):
                where["equivalent_rule"] = where.get("equivalent_rule", 0) + 1
            print(f"  {s['file']}:{s['line']} {s['mutated'].strip()[:60]!r}: equivalent by rule")
            continue
        reason = explain(survivor, original)
        if reason.startswith("equivalent"):  # no test can kill it: not re-run
            s["explanation"] = reason
            still.append(s)
            print(f"  {s['file']}:{s['line']} {s['mutated'].strip()[:60]!r}: equivalent, kept")
            continue
        if s["file"] not in baselines:
            job = child_job(work, target, tests, None, digest_file, run_tests=False)
            run_forked(job, logs / "baseline.log", 1800)
            baselines[s["file"]] = json.loads(digest_file.read_text())
        lines[s["line"] - 1] = s["mutated"]
        log = logs / f"recheck-{n:03d}.log"
        job = child_job(work, target, tests, baselines[s["file"]], digest_file)
        try:
            path.write_text("\n".join(lines))
            code, secs = run_forked(job, log, 600)
        finally:
            path.write_text(original)
        if code in (0, EXIT_EQUIVALENT, EXIT_INVALID):
            s["explanation"] = explain(survivor, original) or s["explanation"]
            still.append(s)
            status = "survived"
        else:
            by = first_failure(log) or str(code)
            result["killed_mutants"].append(
                {"file": s["file"], "line": s["line"], "mutated": s["mutated"].strip(), "by": by}
            )
            result["killed"] += 1
            result["files"][s["file"]]["killed"] += 1
            result["files"][s["file"]]["survived"] -= 1
            status = f"killed by {by}"
        print(f"  {s['file']}:{s['line']} {s['mutated'].strip()[:60]!r}: {status} ({secs:.1f}s)")
    result["survivors"] = still
    result["survived"] = len(still)
    result["kill_rate"] = round(result["killed"] / result["mutants"], 4)
    result["rechecked_survivors"] = True
    add_equivalent_rate(result)
    return result


def add_equivalent_rate(result: dict) -> None:
    """Count the survivors explained as equivalent and the kill rate without them (a mutant no
    test can kill is not a gap in the tests); `kill_rate` itself stays the raw rate."""
    eq = sum(1 for s in result["survivors"] if s["explanation"].startswith("equivalent"))
    result["equivalent_survivors"] = eq
    rest = result["mutants"] - eq
    result["kill_rate_excluding_equivalent"] = round(result["killed"] / rest, 4) if rest else 0.0
    result["unexplained_survivors"] = sum(1 for s in result["survivors"] if not s["explanation"])
    # For comparison with tools that run every compiling mutant: rule-equivalent ones counted.
    every = result["mutants"] + result.get("equivalent_rule", 0)
    rate = round(result["killed"] / every, 4) if every else 0.0
    result["kill_rate_counting_rule_equivalent"] = rate


def merge(results: list[dict]) -> dict:
    """One result from several runs of the same plan (same seed and budget, e.g. a file the
    first run's deadline cut short, run again with --files): each file's counts, survivors and
    killed mutants come from the last result that ran it; totals are recomputed."""
    base = dict(results[0])
    if any(r["seed"] != base["seed"] or r["budget"] != base["budget"] for r in results):
        raise SystemExit("mutate: --merge needs results of the same seed and budget")
    by_file: dict[str, tuple[dict, dict]] = {}
    for r in results:
        for name, stats in r["files"].items():
            if stats["mutants"] or stats.get("skipped") or name not in by_file:
                by_file[name] = (stats, r)
    base["files"] = {name: stats for name, (stats, _) in by_file.items()}
    base["survivors"] = [
        s for name, (_, r) in by_file.items() for s in r["survivors"] if s["file"] == name
    ]
    base["killed_mutants"] = [
        k for name, (_, r) in by_file.items() for k in r["killed_mutants"] if k["file"] == name
    ]
    for key in ("mutants", "killed", "survived", "timeouts", "invalid"):
        base[key] = sum(stats[key] for stats in base["files"].values())
    base["equivalent_bytecode"] = sum(s["equivalent_bytecode"] for s in base["files"].values())
    base["equivalent_rule"] = sum(s.get("equivalent_rule", 0) for s in base["files"].values())
    base["runtime_s"] = round(sum(r["runtime_s"] for r in results), 1)
    base["kill_rate"] = round(base["killed"] / base["mutants"], 4) if base["mutants"] else 0.0
    base["merged_from"] = len(results)
    add_equivalent_rate(base)
    return base


def git_short(rev: str) -> str:
    """The short hash of `rev` in the checkout ("unknown" outside git)."""
    out = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", nargs="*", help="substrings of the paths in TARGETS to mutate")
    ap.add_argument("--budget", type=int, default=200, help="valid mutants in all (default 200)")
    ap.add_argument("--min-per-file", type=int, default=5)
    ap.add_argument("--seed", default="kappa")
    ap.add_argument("--max-minutes", type=float, default=120.0)
    ap.add_argument("--out", help=f"result file (default {DEFAULT_OUT} for a full run)")
    ap.add_argument("--contracts-rev", help="take contracts/ from this git revision")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy and logs")
    ap.add_argument("--list", action="store_true", help="print the plan only")
    ap.add_argument("--recheck", help="re-run the survivors of this result file and update it")
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="RESULT",
        help="combine result files (a later file's per-file results replace an earlier one's) "
        "into --out; runs nothing",
    )
    args = ap.parse_args(argv)
    if args.merge:
        if not args.out:
            ap.error("--merge needs --out")
        merged = merge([json.loads(Path(f).read_text()) for f in args.merge])
        merged["merge_command"] = "python tools/mutate.py " + " ".join(argv or sys.argv[1:])
        Path(args.out).write_text(json.dumps(merged, indent=1) + "\n")
        print(f"wrote {args.out}: {merged['mutants']} mutants, kill_rate {merged['kill_rate']}")
        return 0

    start = time.monotonic()
    work = make_copy(args.contracts_rev, args.keep)
    logs = work.parent / "logs"
    logs.mkdir()
    (work.parent / "kappa.rules").write_text(KAPPA_RULES)
    files = [f for f in TARGETS if (work / f).exists()]
    missing = [f for f in TARGETS if f not in files]
    reports = plan(work, files, args.budget, args.min_per_file)
    if args.files:
        reports = [r for r in reports if any(s in r.file for s in args.files)]
    orders: dict[str, list[Mutant]] = {}
    for rep in reports:
        cands = candidates(work / rep.file, rep.file, work.parent)
        rep.candidates = len(cands)
        orders[rep.file] = sample_order(cands, f"{args.seed}:{rep.file}")
    print(f"kappa mutate: copy at {work}")
    for rep in reports:
        print(
            f"  {rep.file:42} {rep.code_lines:4} lines {rep.candidates:5} candidates "
            f"quota {rep.quota:3}  tests {len(rep.tests)}"
        )
    if args.list:
        return 0

    os.chdir(work)
    preload()
    if args.recheck:
        src = Path(args.recheck) if Path(args.recheck).is_absolute() else REPO / args.recheck
        result = recheck(work, src, logs)
        result["recheck_command"] = "python tools/mutate.py " + " ".join(argv or sys.argv[1:])
        result["tests_commit"] = git_short("HEAD")
        dest = Path(args.out) if args.out else src
        dest = dest if dest.is_absolute() else REPO / dest
        dest.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {dest}: kill_rate {result['kill_rate']}, {result['survived']} survivors")
        return 0
    deadline = start + 60 * args.max_minutes
    for rep in reports:
        run_file(work, rep, orders[rep.file], deadline, logs)

    mutants = sum(r.mutants for r in reports)
    killed = sum(r.killed for r in reports)
    survivors = [asdict(m) for r in reports for m in r.results if m.status == "survived"]
    for s in survivors:
        for k in ("status", "seconds", "killed_by"):
            s.pop(k)
    result = {
        "command": "python tools/mutate.py " + " ".join(argv or sys.argv[1:]),
        "commit": git_short(args.contracts_rev or "HEAD"),
        "tool": "tools/mutate.py (universalmutator regexp rules, titanoboa, pytest)",
        "universalmutator": version("universalmutator"),
        "vyper": version("vyper"),
        "titanoboa": version("titanoboa"),
        "seed": args.seed,
        "budget": args.budget,
        "rules": [*RULE_FILES, "KAPPA_RULES"],
        "contracts_rev": args.contracts_rev or "working tree",
        "mutants": mutants,
        "killed": killed,
        "survived": mutants - killed,
        "kill_rate": round(killed / mutants, 4) if mutants else 0.0,
        "timeouts": sum(r.timeouts for r in reports),
        "invalid": sum(r.invalid for r in reports),
        "equivalent_bytecode": sum(r.equivalent for r in reports),
        "equivalent_rule": sum(r.equivalent_rule for r in reports),
        "runtime_s": round(time.monotonic() - start, 1),
        "files": {
            r.file: {
                "code_lines": r.code_lines,
                "candidates": r.candidates,
                "quota": r.quota,
                "mutants": r.mutants,
                "killed": r.killed,
                "survived": r.survived,
                "invalid": r.invalid,
                "equivalent_bytecode": r.equivalent,
                "equivalent_rule": r.equivalent_rule,
                "timeouts": r.timeouts,
                "baseline_s": r.baseline_s,
                "tests": r.tests,
                **({"skipped": r.skipped} if r.skipped else {}),
            }
            for r in reports
        },
        "not_present": missing,
        "survivors": survivors,
        "killed_mutants": [
            {
                "file": m.file,
                "line": m.line,
                "mutated": m.mutated.strip(),
                "by": m.killed_by or m.status,
            }
            for r in reports
            for m in r.results
            if m.status not in ("survived", "invalid", "equivalent", "equivalent_rule")
        ],
    }
    add_equivalent_rate(result)
    out = args.out or (None if args.files else DEFAULT_OUT)
    if out:
        target = Path(out) if Path(out).is_absolute() else REPO / out
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {target}")
    print(
        f"mutants {mutants}  killed {killed}  kill_rate {result['kill_rate']}  "
        f"survived {len(survivors)}  invalid {result['invalid']}  "
        f"equivalent {result['equivalent_bytecode']}  {result['runtime_s']}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
