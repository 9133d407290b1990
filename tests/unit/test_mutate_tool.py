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
