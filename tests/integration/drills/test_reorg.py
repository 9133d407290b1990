"""Drill `reorg`: the blocks of a crash, and of the auction starts the bot sent for it, are
rolled back (anvil_rollback, depth 1 to 5) after the bot processed them.

The bot sees the hash of its last processed block change, rolls its mirror back and replays
the canonical log (a rebuild from the deployment block), and its mirror equals the contracts'
views afterwards. Its reorged-out transactions (the node forgot them) are not resent: they are
released (`reorged_out`) and planned again from the rolled-back state, where the accounts are
healthy, so nothing is sent until the crash happens again, and then every auction starts once.
Recovery: seconds from the rollback to the first block processed after the rebuild.
"""

from __future__ import annotations

import time

from tests.integration.drills.support import (
    SIGNER_ADDRESSES,
    all_auctioned,
    liquidatable,
    mirror_mismatches,
    outcome,
    record_result,
    wait_for,
)

KEEPER = "  confirmations: 1\n"


def test_reorg(drill):
    node = drill.node
    node.interval_mining(1)
    bot = drill.bot("bot", KEEPER).start(node.port)
    wait_for(lambda: bot.events("backfill"), 120, "the first backfill")
    since = node.head() + 1
    hashes = node.move_feeds(1800.0)
    receipts = wait_for(lambda: all(node.receipt(h) for h in hashes), 30, "the crash")
    assert receipts
    crash_block = max(int(node.receipt(h)["blockNumber"], 16) for h in hashes)
    turned = liquidatable(node, drill.accounts, crash_block)
    wait_for(lambda: len(bot.events("sent")) >= len(turned), 30, "the auction starts sent")
    sent = bot.events("sent")
    wait_for(lambda: all(node.receipt(x["hash"]) for x in sent), 30, "the auction starts mined")
    node.interval_mining(0)  # hold the chain while the bot catches up with it
    head = node.head()
    wait_for(lambda: bot.processed() >= head - 1, 30, "the bot at the head")
    time.sleep(1.0)
    assert all_auctioned(node, turned, since)
    depth = head - crash_block + 1
    assert 1 <= depth <= 5, (head, crash_block)
    node.rpc("anvil_rollback", [depth])
    rolled = time.monotonic()
    assert node.head() == crash_block - 1
    assert all(node.auction_start(a) == 0 for a in turned)  # the auctions are gone
    node.interval_mining(1)
    wait_for(lambda: bot.events("reorg"), 60, "the reorg")
    reorg_line = len(bot.lines())
    wait_for(
        lambda: any(x["event"] == "risk" for x in bot.lines()[reorg_line:]), 60, "a block after"
    )
    recovery = time.monotonic() - rolled
    time.sleep(4)  # a few blocks on the rolled-back chain: nothing is resent
    after = bot.lines()[reorg_line:]
    resent = [x for x in after if x["event"] == "sent"]
    node.interval_mining(0)
    b = node.head()
    wait_for(lambda: bot.processed() >= b - 1, 30, "the bot at the head")
    time.sleep(1.0)
    block, mismatches = mirror_mismatches(node, drill.checkpoint("bot"))
    reorged_out = bot.events("reorged_out")
    # The crash again: every auction starts once.
    node.interval_mining(1)
    hashes = node.move_feeds(1800.0)
    wait_for(lambda: all(node.receipt(h) for h in hashes), 30, "the second crash")
    again = max(int(node.receipt(h)["blockNumber"], 16) for h in hashes)
    turned_again = liquidatable(node, drill.accounts, again)
    wait_for(lambda: all_auctioned(node, turned_again, since), 60, "the auctions")
    time.sleep(3)
    result = outcome(node, turned_again, since, [SIGNER_ADDRESSES["TEST::3"]])
    record_result(
        "reorg",
        missed=len(result["missed"]),
        duplicates=result["duplicates"] + len(resent),
        recovery_seconds=round(recovery, 2),
        recovery="rollback -> first block processed after the mirror's rebuild",
        depth=depth,
        reorged_out=len(reorged_out),
        resent_after_reorg=len(resent),
        accounts_turned_liquidatable=len(turned_again),
    )
    assert turned and sorted(turned) == sorted(turned_again)
    assert mismatches == [] and block >= b - 1
    assert {x["nonce"] for x in reorged_out} == {x["nonce"] for x in sent}, (reorged_out, sent)
    assert resent == [], resent
    assert result["missed"] == [] and result["duplicates"] == 0, result
    assert sum(result["auctions"].values()) == len(turned_again), result["auctions"]
