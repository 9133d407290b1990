"""keeper.runtime.sharding: shards of mirror rows and the takeover between bots."""

from __future__ import annotations

import numpy as np

from keeper.runtime.sharding import Takeover, key_owner, own_books, row_owner


def test_rows_are_owned_by_whole_books():
    owners = row_owner(np.arange(10), shard_size=2, count=3)
    assert owners.tolist() == [0, 0, 1, 1, 2, 2, 0, 0, 1, 1]
    assert own_books(5, index=1, count=3) == [1, 4]
    assert row_owner(np.arange(4), shard_size=8, count=1).tolist() == [0, 0, 0, 0]
    # Key owners are stable and spread over the shards.
    owners_k = [key_owner(("settle_expiry", str(1_700_000_000 + 86_400 * i)), 2) for i in range(64)]
    assert owners_k == [
        key_owner(("settle_expiry", str(1_700_000_000 + 86_400 * i)), 2) for i in range(64)
    ]
    assert 16 < sum(owners_k) < 48


def test_own_actions_pass_and_foreign_ones_wait_for_the_takeover():
    t = Takeover(index=0, count=2, blocks=3)
    mine, theirs = ("bid", "0xa"), ("start_auction", "0xb")
    assert t.admit([mine, theirs], [0, 1], block=10) == ([True, False], [])
    assert t.admit([mine, theirs], [0, 1], block=12) == ([True, False], [])
    assert t.admit([theirs], [1], block=13) == ([True], [theirs])  # due 3 blocks: taken over
    assert t.admit([theirs], [1], block=14) == ([True], [])  # still ours, reported once
    # The owner acted (the action is no longer due): the clock starts again next time.
    assert t.admit([], [], block=15) == ([], [])
    assert t.admit([theirs], [1], block=16) == ([False], [])


def test_workers_never_take_over_and_a_single_keeper_owns_everything():
    w = Takeover(index=1, count=2, blocks=None)
    key = ("bid", "0xa")
    for b in range(100):
        assert w.admit([key], [0], block=b) == ([False], [])
    solo = Takeover(index=0, count=1, blocks=None)
    assert solo.admit([key], [0], block=1) == ([True], [])
