"""Drill `restart`: the bot is killed with SIGKILL in the middle of a crash and restarted.

No account that turned liquidatable is missed, no auction gets a second start and no nonce a
second transaction, and the restarted bot resumes from its checkpoint (the backfill starts at
the checkpoint's block + 1, not at the deployment block). Recovery: seconds from the restart to
the first processed block at or past the head the restart saw.
"""

from __future__ import annotations

import time

from tests.integration.drills.support import (
    SIGNER_ADDRESSES,
    all_auctioned,
    crash,
    mirror_mismatches,
    outcome,
    record_result,
    wait_for,
)


def test_restart(drill):
    node = drill.node
    node.interval_mining(1)
    bot = drill.bot("bot").start(node.port)
    wait_for(lambda: bot.events("backfill"), 120, "the first backfill")
    since = node.head()
    first = crash(node, drill.accounts, [2600.0])
    wait_for(lambda: bot.events("sent"), 30, "the first auction starts")
    bot.kill()  # mid-crash: the next steps happen while it is down
    killed_at = bot.lines()[-1]
    rest = crash(node, drill.accounts, [2200.0, 1800.0], wait_blocks=1)
    head = node.head()
    restarted = time.monotonic()
    bot.start(node.port)
    wait_for(lambda: bot.processed() >= head, 120, "the restarted bot at the head")
    recovery = time.monotonic() - restarted
    steps = first["steps"] + rest["steps"]
    turned = sorted({a for s in steps for a in s["newly"]})
    wait_for(lambda: all_auctioned(node, turned, since), 60, "every auction started")
    time.sleep(3)  # a few more blocks: nothing is sent twice
    result = outcome(node, turned, since, [SIGNER_ADDRESSES["TEST::3"]])
    block, mismatches = mirror_mismatches(node, drill.checkpoint("bot"))
    lines = bot.lines(every=False)
    loaded = next(x for x in lines if x["event"] == "checkpoint_loaded")
    backfill = next(x for x in lines if x["event"] == "backfill")
    record_result(
        "restart",
        missed=len(result["missed"]),
        duplicates=result["duplicates"],
        recovery_seconds=round(recovery, 2),
        recovery="restart -> first processed block at the head",
        accounts_turned_liquidatable=len(turned),
        auctions_started=len(result["auctions"]),
        resumed_from_block=loaded["block"],
        backfill_blocks=backfill["end"] - backfill["start"] + 1,
        deployment_block=node.start_block,
    )
    assert len(turned) >= 3, steps
    assert result["missed"] == [] and result["duplicates"] == 0, result
    # Every start the bot sent succeeded (an account can have two auctions: a bid that
    # restores health ends one, a later shortfall opens the next).
    sent = [x for x in bot.lines() if x["event"] == "sent" and x["kind"] == "start_auction"]
    assert len(sent) == sum(result["auctions"].values()), (sent, result["auctions"])
    assert mismatches == [] and block >= head
    # Resumed from the checkpoint, not from the deployment block.
    assert loaded["block"] >= since and backfill["start"] == loaded["block"] + 1
    assert backfill["start"] > node.start_block + 10
    assert killed_at["event"] != "shutdown"
    assert not [x for x in bot.lines() if x["event"] in ("error", "send_error", "drift")]
