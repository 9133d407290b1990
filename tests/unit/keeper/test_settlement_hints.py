"""keeper/settlement.py: the round-id hints of OracleAggregator.settlement_price (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keeper.settlement import PHASE_SHIFT, first_round_at, hints, walk_back

PHASE = 1 << PHASE_SHIFT
EXPIRY = 1_000_000


def test_first_round_at_or_after_the_expiry():
    rounds = [(1, EXPIRY - 100), (2, EXPIRY - 1), (3, EXPIRY), (4, EXPIRY + 5)]
    assert first_round_at(rounds, EXPIRY) == 3
    assert first_round_at(reversed(rounds), EXPIRY) == 3  # any order
    assert first_round_at(rounds, EXPIRY + 1) == 4
    assert first_round_at(rounds, EXPIRY + 6) == 0  # nothing after it yet
    assert first_round_at([], EXPIRY) == 0


def test_first_round_at_uses_the_latest_phase_only():
    rounds = [(5, EXPIRY - 10), (6, EXPIRY + 10), (PHASE | 1, EXPIRY - 5), (PHASE | 2, EXPIRY + 20)]
    assert first_round_at(rounds, EXPIRY) == PHASE | 2


def test_first_round_at_phase_started_after_the_expiry():
    # Round 1 of the phase is the answer: the contract takes it as "missing".
    assert first_round_at([(PHASE | 1, EXPIRY + 1), (PHASE | 2, EXPIRY + 2)], EXPIRY) == PHASE | 1
    assert first_round_at([(1, EXPIRY + 1)], EXPIRY) == 1


def test_first_round_at_needs_the_predecessor():
    with pytest.raises(ValueError, match="not in the history"):
        first_round_at([(7, EXPIRY + 1)], EXPIRY)


def test_hints_one_per_source():
    histories = [[(1, EXPIRY - 1), (2, EXPIRY + 1)], [(4, EXPIRY - 2), (5, EXPIRY)], []]
    assert hints(histories, EXPIRY) == [2, 5, 0]


def test_walk_back_stops_at_the_first_round_before_the_expiry():
    times = {1: EXPIRY - 50, 2: EXPIRY - 10, 3: EXPIRY + 1, 4: EXPIRY + 9}
    reads: list[int] = []

    def get_round(round_id: int):
        reads.append(round_id)
        if round_id not in times:
            return None
        return (round_id, 3000, times[round_id], times[round_id], round_id)

    history = walk_back(get_round, 4, EXPIRY)
    assert history == [(4, EXPIRY + 9), (3, EXPIRY + 1), (2, EXPIRY - 10)]
    assert reads == [4, 3, 2]
    assert first_round_at(history, EXPIRY) == 3
    assert walk_back(get_round, 1, EXPIRY) == [(1, EXPIRY - 50)]
    assert walk_back(lambda _: None, 4, EXPIRY) == []
    with pytest.raises(ValueError, match="more than 2 rounds"):
        walk_back(get_round, 4, EXPIRY - 100, limit=2)


def test_walk_back_stays_in_the_phase():
    def get_round(round_id: int):
        return (round_id, 1, EXPIRY + 1, EXPIRY + 1, round_id)

    assert walk_back(get_round, PHASE | 2, EXPIRY) == [
        (PHASE | 2, EXPIRY + 1),
        (PHASE | 1, EXPIRY + 1),
    ]


@given(
    gaps=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=30),
    expiry_offset=st.integers(min_value=-10, max_value=3000),
)
def test_first_round_at_matches_the_contract_rule(gaps: list[int], expiry_offset: int):
    """On a monotone history the hint is the unique round with updated_at >= expiry whose
    predecessor is dated before it (the contract's check), or 0 / round 1 when none."""
    times, t = [], EXPIRY
    for g in gaps:
        t += g
        times.append(t)
    rounds = list(enumerate(times, start=1))
    expiry = EXPIRY + expiry_offset
    got = first_round_at(rounds, expiry)
    proven = [r for r, u in rounds if u >= expiry and r >= 2 and times[r - 2] < expiry]
    if proven:
        assert got == proven[0] and len(proven) == 1
    elif times[0] >= expiry:
        assert got == 1
    else:
        assert got == 0
