"""tools/mutate.py: the rule that explains a survivor as an initial value overwritten unread."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import mutate

SOURCE = """\
    r0: uint256 = 0
    r1: uint256 = 0
    last32: uint256 = 0
    r0, r1, last32 = self._unpack(
        self.slot0, r0
    )
    x: uint256 = 1
    y: uint256 = x
    x, z = self.pair()
    w: uint256 = 5
    w = 6
    v: uint256 = 0
    v, u = self.pair(v)
"""


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (2, True),  # last32: overwritten by the tuple assignment, never read first
        (1, True),  # r1: the same, past the other declarations
        (0, False),  # r0: read on the assignment's continuation line
        (6, False),  # x: read by the next declaration
        (9, False),  # w: a plain assignment follows, not a tuple assignment
        (11, False),  # v: read on the assignment's own line
        (3, False),  # not a declaration
    ],
)
def test_overwritten_before_use(line, expected):
    assert mutate.overwritten_before_use(SOURCE.split("\n"), line) is expected


def _result(files: dict[str, tuple[int, int]]) -> dict:
    """A minimal result: per file (mutants, killed); one survivor per unkilled mutant."""
    stats = {
        f: {
            "mutants": m,
            "killed": k,
            "survived": m - k,
            "timeouts": 0,
            "invalid": 1,
            "equivalent_bytecode": 0,
        }
        for f, (m, k) in files.items()
    }
    return {
        "seed": "kappa",
        "budget": 10,
        "runtime_s": 5.0,
        "files": stats,
        "survivors": [
            {"file": f, "explanation": ""} for f, (m, k) in files.items() for _ in range(m - k)
        ],
        "killed_mutants": [{"file": f} for f, (m, k) in files.items() for _ in range(k)],
    }


def test_merge_takes_each_file_from_the_run_that_ran_it():
    first = _result({"a.vy": (4, 3), "b.vy": (1, 1), "c.vy": (0, 0)})  # deadline cut b and c
    second = _result({"b.vy": (5, 4), "c.vy": (3, 3)})
    merged = mutate.merge([first, second])
    assert merged["files"]["a.vy"]["mutants"] == 4
    assert merged["files"]["b.vy"]["mutants"] == 5  # the later, complete run of b
    assert (merged["mutants"], merged["killed"], merged["survived"]) == (12, 10, 2)
    assert merged["kill_rate"] == round(10 / 12, 4)
    assert sorted(s["file"] for s in merged["survivors"]) == ["a.vy", "b.vy"]
    assert len(merged["killed_mutants"]) == 10
    with pytest.raises(SystemExit):
        mutate.merge([first, {**second, "budget": 11}])


@pytest.mark.parametrize(
    ("original", "mutated", "expected"),
    [
        ("x = unsafe_mul(a, b)", "x = unsafe_mul ( b,a)", True),
        ("x = min(count, CAP)", "x = min ( CAP,count)", True),
        (
            "c = unsafe_add(c, unsafe_mul(unsafe_div(unsafe_mul(r1, S), r0), dt))",
            "c = unsafe_add(c, unsafe_mul(unsafe_div(unsafe_mul ( S,r1), r0), dt))",
            True,
        ),
        ("x = unsafe_sub(a, b)", "x = unsafe_sub ( b,a)", False),  # not commutative
        ("x = unsafe_div(a, b)", "x = unsafe_div ( b,a)", False),
        ("x = f(a, b, c)", "x = f(a , c, b)", False),
        ("x = unsafe_mul(a, b)", "x = unsafe_mul(a, b + 1)", False),
    ],
)
def test_commutative_swap(original, mutated, expected):
    assert mutate.commutative_swap(original, mutated) is expected
