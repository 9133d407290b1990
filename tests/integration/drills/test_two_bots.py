"""Drill `two_bots`: two bots with their own signers watch the same deployment, each owning
half of the accounts (keeper/runtime/sharding.py: `shard: {count: 2, takeover_blocks: 3}`).

While both run, each account's auction is started and bid on by its owner only: neither bot
sends a transaction that reverts because the other got there first. Then one bot is killed
in the middle of the crash: the other takes over its accounts after 3 blocks, so nothing is
missed. Recovery: seconds from the next crash step to the last auction of the dead bot's
accounts started by the survivor.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.drills.support import (
    BOT_SIGNERS,
    SIGNER_ADDRESSES,
    all_auctioned,
    crash,
    outcome,
    record_result,
    wait_for,
)

TAKEOVER = 3


def shard(index: int) -> str:
    return f"  shard_size: 4\n  shard: {{index: {index}, count: 2, takeover_blocks: {TAKEOVER}}}\n"


@pytest.mark.skip(
    reason="flaky since interest-bearing cash: which shard's accounts turn liquidatable in each "
    "crash varies between runs, so a bot may have no auction to start or to take over; "
    "issue #22 stays open for it"
)
def test_two_bots(drill):
    node = drill.node
    node.interval_mining(1)
    a = drill.bot("a", shard(0), signer=BOT_SIGNERS[0]).start(node.port)
    b = drill.bot("b", shard(1), signer=BOT_SIGNERS[1]).start(node.port)
    wait_for(lambda: a.events("backfill") and b.events("backfill"), 120, "both backfills")
    signers = [SIGNER_ADDRESSES[s] for s in BOT_SIGNERS]
    since = node.head()
    first = crash(node, drill.accounts, [2600.0, 2200.0])
    turned_first = sorted({x for s in first["steps"] for x in s["newly"]})
    wait_for(lambda: all_auctioned(node, turned_first, since), 60, "the auctions")
    time.sleep(3)
    both = outcome(node, turned_first, since, signers)
    a.kill()
    second_since = node.head()
    step = time.monotonic()
    second = crash(node, drill.accounts, [1800.0], wait_blocks=1)
    turned_second = second["steps"][0]["newly"]
    wait_for(
        lambda: all_auctioned(node, turned_second, second_since),
        60,
        "the survivor's takeover",
    )
    recovery = time.monotonic() - step
    time.sleep(3)
    result = outcome(node, turned_first + turned_second, since, signers)
    takeovers = b.events("takeover")
    starters = {t["hash"]: t["from"] for t in result["transactions"] if t["block"] > second_since}
    taken = [x for x in b.events("sent") if x["kind"] == "start_auction" and x["hash"] in starters]
    by_a = [x for x in a.events("sent") if x["kind"] == "start_auction"]
    by_b = [x for x in b.events("sent") if x["kind"] == "start_auction"]
    record_result(
        "two_bots",
        missed=len(result["missed"]),
        duplicates=result["duplicates"],
        recovery_seconds=round(recovery, 2),
        recovery="crash step after one bot died -> its accounts' auctions started by the other",
        takeover_blocks=TAKEOVER,
        takeovers=len(takeovers),
        starts_by_bot={"a": len(by_a), "b": len(by_b)},
        bids_by_bot={
            "a": sum(x["kind"] == "bid" for x in a.events("sent")),
            "b": sum(x["kind"] == "bid" for x in b.events("sent")),
        },
    )
    # Both running: each acted on its own accounts, nothing reverted, nothing twice.
    assert turned_first and both["duplicates"] == 0 and both["missed"] == [], both
    assert by_a and by_b, (by_a, by_b)
    b_before = [x for x in by_b if x["hash"] not in starters]
    assert not {x["account"] for x in by_a} & {x["account"] for x in b_before}, (by_a, by_b)
    # One died: the other took its accounts over, and still nothing reverted.
    assert turned_second and takeovers, (turned_second, takeovers)
    assert taken and result["missed"] == [] and result["duplicates"] == 0, result
