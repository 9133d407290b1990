"""Settlement hints: the round ids `OracleAggregator.settlement_price` needs (pure, no chain I/O).

`MarginEngine.settle_expiry(expiry, hints)` settles at the median of each oracle source's first
round updated at or after the expiry. The contract cannot search a feed's history, so the caller
names that round per source, and the contract checks it: `getRoundData(hint).updatedAt >=
expiry` and `getRoundData(hint - 1).updatedAt < expiry`, within the phase of the feed's latest
round (Chainlink proxy round ids are `phaseId << 64 | aggregatorRoundId`, contiguous within a
phase). A wrong hint makes the call revert; it cannot choose a different price.

`first_round_at` finds the hint in a feed's round history given as (round_id, updated_at)
pairs; `walk_back` collects that history from a `getRoundData`-like callable, newest first,
stopping at the first round older than the expiry. A hint of 0 is ignored by the contract for a
source that has not published at or after the expiry yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

PHASE_SHIFT = 64
_AGGREGATOR_ROUND_MASK = (1 << PHASE_SHIFT) - 1

# getRoundData(round_id) -> (roundId, answer, startedAt, updatedAt, answeredInRound), or None
# when the feed has no such round (a revert).
GetRound = Callable[[int], tuple[int, int, int, int, int] | None]


def first_round_at(rounds: Iterable[tuple[int, int]], expiry: int) -> int:
    """The id of the feed's first round updated at or after `expiry`, in the phase of its
    latest round, from (round_id, updated_at) pairs (any order; rounds of other phases are
    ignored). 0 when no round of that phase is at or after the expiry. When round 1 of the
    phase is already at or after the expiry its id is returned: the contract takes it as
    proof that the phase has no provable first round (the source counts as missing).

    Raises ValueError when the history lacks the predecessor of that round, so the hint
    could not be checked."""
    history = dict(rounds)
    if not history:
        return 0
    phase = max(history) >> PHASE_SHIFT
    in_phase = sorted(r for r in history if r >> PHASE_SHIFT == phase)
    for round_id in in_phase:
        if history[round_id] < expiry:
            continue
        if round_id & _AGGREGATOR_ROUND_MASK <= 1:
            return round_id
        previous = history.get(round_id - 1)
        if previous is None:
            raise ValueError(
                f"round {round_id - 1} (before round {round_id}) is not in the history"
            )
        if previous >= expiry:
            raise ValueError(
                f"round {round_id - 1} is dated at or after the expiry but was skipped"
            )
        return round_id
    return 0


def hints(histories: Sequence[Iterable[tuple[int, int]]], expiry: int) -> list[int]:
    """One hint per source, in the aggregator's source order, from each source's history."""
    return [first_round_at(h, expiry) for h in histories]


def walk_back(
    get_round: GetRound, latest_round_id: int, expiry: int, limit: int = 10_000
) -> list[tuple[int, int]]:
    """(round_id, updated_at) of the feed's rounds from its latest back to the first one
    dated before `expiry` (inclusive), within the latest round's phase; fewer when the feed
    has no earlier round. `limit` bounds the number of reads (a feed that published more
    rounds than that after the expiry raises ValueError)."""
    out: list[tuple[int, int]] = []
    phase_start = latest_round_id >> PHASE_SHIFT << PHASE_SHIFT
    round_id = latest_round_id
    for _ in range(limit):
        if round_id <= phase_start:
            return out
        data = get_round(round_id)
        if data is None:
            return out
        out.append((round_id, int(data[3])))
        if int(data[3]) < expiry:
            return out
        round_id -= 1
    raise ValueError(f"more than {limit} rounds after the expiry")


def source_hints(oracle: Any, feed_at: Callable[[str], Any], expiry: int) -> list[int]:
    """The hints of `OracleAggregator.settlement_price(expiry, hints)` for every configured
    source, in the aggregator's order, read through any contract binding (ape, titanoboa, the
    revm harness) that exposes the AggregatorV3 views: `feed_at(address)` gives a source's
    contract. 0 for a source that cannot be read or whose history has a gap (the aggregator
    then counts it as missing)."""
    out = []
    for i in range(int(oracle.source_count())):
        feed = feed_at(str(oracle.source(i)[0]))
        try:
            latest = int(feed.latestRoundData()[0])
        except Exception:  # a reverting source: the aggregator ignores its hint
            out.append(0)
            continue

        def get_round(round_id: int, feed: Any = feed) -> Any:
            try:
                return tuple(feed.getRoundData(round_id))
            except Exception:  # no such round
                return None

        try:
            out.append(first_round_at(walk_back(get_round, latest, expiry), expiry))
        except ValueError:  # a gap in the history: no hint can be proven
            out.append(0)
    return out
