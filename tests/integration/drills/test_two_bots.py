"""Drill `two_bots`: two bots with their own signers watch the same deployment, each owning
half of the accounts (keeper/runtime/sharding.py: `shard: {count: 2, takeover_blocks: 3}`).

While both run, each account's auction is started by its owner only: neither bot sends a
transaction that reverts because the other got there first. Then the bot that owns more of the
accounts still healthy is killed and the crash goes on: the other takes over its accounts after
3 blocks, so nothing is missed. Recovery: seconds from the crash step after the kill to the
last auction of the dead bot's accounts started by the survivor.

Which accounts turn liquidatable at a given price depends on the seeded book and on the
interest accrued since it was seeded, so the drill does not name them: it reads each account's
owner from a bot's mirror (its rows, in the order every bot numbers them) and steps the price
down until each phase has what it tests (accounts of both owners, then one of the dead bot's).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from keeper.runtime.sharding import row_owner
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
SHARD_SIZE = 1  # alternate rows, so both owners hold accounts of every kind
BOTH_RUNNING = (2600.0, 2200.0, 2000.0, 1800.0)  # until accounts of both owners turned
ONE_DEAD = (1600.0, 1400.0, 1200.0, 1000.0, 800.0)  # until one of the dead bot's turned


def shard(index: int) -> str:
    return (
        f"  shard_size: {SHARD_SIZE}\n"
        f"  shard: {{index: {index}, count: 2, takeover_blocks: {TAKEOVER}}}\n"
    )


def owners(checkpoint: Path) -> dict[str, int]:
    """Each mirrored account's shard, from a bot's checkpoint (rows in mirror order)."""
    rows = [a["address"].lower() for a in json.loads(checkpoint.read_text())["accounts"]]
    owner = row_owner(np.arange(len(rows)), SHARD_SIZE, 2)
    return {a: int(o) for a, o in zip(rows, owner, strict=True)}


def step_until(node, accounts, spots, enough) -> list[str]:
    """Crash steps, one price at a time, until `enough(turned so far)`; the accounts turned."""
    turned: list[str] = []
    for spot in spots:
        turned += crash(node, accounts, [spot])["steps"][0]["newly"]
        if enough(turned):
            return turned
    raise AssertionError(f"no price in {spots} gave the phase its accounts; turned: {turned}")


def test_two_bots(drill):
    node = drill.node
    node.interval_mining(1)
    bots = [
        drill.bot(name, shard(i), signer=BOT_SIGNERS[i]).start(node.port)
        for i, name in enumerate("ab")
    ]
    wait_for(lambda: all(b.events("backfill") for b in bots), 120, "both backfills")
    owner = owners(drill.checkpoint("a"))
    assert {a.lower() for a in drill.accounts} <= set(owner), "an account is not mirrored"
    signers = [SIGNER_ADDRESSES[s] for s in BOT_SIGNERS]

    since = node.head()
    turned_first = step_until(
        node, drill.accounts, BOTH_RUNNING, lambda t: {owner[a.lower()] for a in t} == {0, 1}
    )
    wait_for(lambda: all_auctioned(node, turned_first, since), 60, "the auctions")
    time.sleep(3)
    both = outcome(node, turned_first, since, signers)
    started_while_both = [
        [x["account"].lower() for x in b.events("sent") if x["kind"] == "start_auction"]
        for b in bots
    ]

    # Kill the owner of more of the accounts still healthy (ties: the first bot).
    healthy = [a.lower() for a in drill.accounts if a not in turned_first]
    victim = max((0, 1), key=lambda i: (sum(owner[a] == i for a in healthy), -i))
    dead, survivor = bots[victim], bots[1 - victim]
    dead.kill()
    second_since = node.head()
    step = time.monotonic()
    turned_second = step_until(
        node, drill.accounts, ONE_DEAD, lambda t: any(owner[a.lower()] == victim for a in t)
    )
    wait_for(
        lambda: all_auctioned(node, turned_second, second_since), 60, "the survivor's takeover"
    )
    recovery = time.monotonic() - step
    time.sleep(3)
    result = outcome(node, turned_first + turned_second, since, signers)
    takeovers = survivor.events("takeover")
    starters = {t["hash"]: t["from"] for t in result["transactions"] if t["block"] > second_since}
    taken = [
        x["account"].lower()
        for x in survivor.events("sent")
        if x["kind"] == "start_auction"
        and x["hash"] in starters
        and owner[x["account"].lower()] == victim
    ]
    record_result(
        "two_bots",
        missed=len(result["missed"]),
        duplicates=result["duplicates"],
        recovery_seconds=round(recovery, 2),
        recovery="crash step after one bot died -> its accounts' auctions started by the other",
        takeover_blocks=TAKEOVER,
        takeovers=len(takeovers),
        accounts_turned_liquidatable=len(turned_first) + len(turned_second),
        starts_by_bot={"ab"[i]: len(s) for i, s in enumerate(started_while_both)},
        taken_over=len(taken),
        bids_by_bot={
            "ab"[i]: sum(x["kind"] == "bid" for x in b.events("sent")) for i, b in enumerate(bots)
        },
    )
    # Both running: each started the auctions of its own accounts only, nothing reverted,
    # nothing twice, nothing missed.
    assert both["duplicates"] == 0 and both["missed"] == [], both
    for i, started in enumerate(started_while_both):
        assert started and {owner[a] for a in started} == {i}, (i, started_while_both, owner)
    # One died: the survivor took its accounts over, and still nothing reverted or was missed.
    mine = {a.lower() for a in turned_second if owner[a.lower()] == victim}
    assert takeovers and mine <= set(taken), (mine, taken, takeovers)
    assert result["missed"] == [] and result["duplicates"] == 0, result
