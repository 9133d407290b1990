"""Drill `reorg`: the blocks of a crash, and of the auction starts the bot sent for it, are
rolled back (anvil_rollback) after the bot processed them: once by 2 blocks (the crash block
and the block of the starts, which are not final yet: `confirmations: 1`), once by 5 (the
starts final, with three more blocks on top).

Each time the bot sees the hash of its last processed block change, rolls its mirror back to
the newest in-memory checkpoint still on the canonical chain (not the deployment block) and
replays the log from there, and its mirror equals the contracts' views afterwards. Its
reorged-out transactions that were still tracked (the node forgot them) are released
(`reorged_out`) and planned again from the rolled-back state, where the accounts are healthy,
so nothing is resent; when the crash happens again every auction starts once. Recovery:
seconds from the rollback to the first block processed after the roll back (the slower of the
two).
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


def crash_and_roll_back(drill, bot, since: int, depth: int) -> dict:
    """The crash, mined block by block until the bot's auction starts are in, then `depth`
    blocks (from the crash block on) rolled back once the bot processed them."""
    node = drill.node
    node.interval_mining(0)
    n_sent = len(bot.events("sent"))
    hashes = node.move_feeds(1800.0)
    node.mine()
    crash_block = node.head()
    assert all(int(node.receipt(h)["status"], 16) == 1 for h in hashes)
    turned = liquidatable(node, drill.accounts, crash_block)

    def starts_mined() -> bool:
        sent = [x for x in bot.events("sent")[n_sent:] if x["kind"] == "start_auction"]
        return len(sent) >= len(turned) and all(node.receipt(x["hash"]) for x in sent)

    def starts_sent() -> bool:
        sent = [x for x in bot.events("sent")[n_sent:] if x["kind"] == "start_auction"]
        return len(sent) >= len(turned)

    wait_for(starts_sent, 30, "the auction starts sent")
    time.sleep(0.5)
    node.mine()
    while node.head() < crash_block + depth - 1:  # more blocks on top (bids among them)
        time.sleep(1.0)
        node.mine()
    assert starts_mined() and all_auctioned(node, turned, since)
    sent = bot.events("sent")[n_sent:]
    head = node.head()
    wait_for(lambda: bot.processed() >= head - 1, 30, "the bot at the head")
    time.sleep(1.0)
    reorgs = len(bot.events("reorg"))
    node.rpc("anvil_rollback", [depth])
    rolled = time.monotonic()
    assert node.head() == crash_block - 1
    assert all(node.auction_start(a) == 0 for a in turned)  # the auctions are gone
    node.interval_mining(1)
    wait_for(lambda: len(bot.events("reorg")) > reorgs, 60, "the reorg")
    line = len(bot.lines())
    wait_for(lambda: any(x["event"] == "risk" for x in bot.lines()[line:]), 60, "a block after")
    recovery = time.monotonic() - rolled
    time.sleep(4)  # a few blocks on the rolled-back chain: nothing is resent
    resent = [x for x in bot.lines()[line:] if x["event"] == "sent"]
    node.interval_mining(0)
    b = node.head()
    wait_for(lambda: bot.processed() >= b - 1, 30, "the bot at the head")
    time.sleep(1.0)
    block, mismatches = mirror_mismatches(node, drill.checkpoint("bot"))
    assert mismatches == [] and block >= b - 1, mismatches
    return {"turned": turned, "sent": sent, "resent": resent, "recovery": recovery}


def test_reorg(drill):
    node = drill.node
    node.interval_mining(1)
    bot = drill.bot("bot", KEEPER).start(node.port)
    wait_for(lambda: bot.events("backfill"), 120, "the first backfill")
    since = node.head() + 1
    first = crash_and_roll_back(drill, bot, since, depth=2)
    reorged_out = bot.events("reorged_out")
    second = crash_and_roll_back(drill, bot, since, depth=5)
    # The crash again: every auction starts once.
    node.interval_mining(1)
    hashes = node.move_feeds(1800.0)
    wait_for(lambda: all(node.receipt(h) for h in hashes), 30, "the last crash")
    again = max(int(node.receipt(h)["blockNumber"], 16) for h in hashes)
    turned = liquidatable(node, drill.accounts, again)
    wait_for(lambda: all_auctioned(node, turned, since), 60, "the auctions")
    time.sleep(3)
    result = outcome(node, turned, since, [SIGNER_ADDRESSES["TEST::3"]])
    resent = first["resent"] + second["resent"]
    rolled_back_to = [x["rolled_back_to"] for x in bot.events("reorg")]
    record_result(
        "reorg",
        missed=len(result["missed"]),
        duplicates=result["duplicates"] + len(resent),
        recovery_seconds=round(max(first["recovery"], second["recovery"]), 2),
        recovery="rollback -> first block processed after the mirror's roll back (slower of two)",
        depths=[2, 5],
        reorged_out=len(reorged_out),
        rolled_back_transactions=[len(first["sent"]), len(second["sent"])],
        resent_after_reorg=len(resent),
        rolled_back_to=rolled_back_to,
        deployment_block=node.start_block,
        accounts_turned_liquidatable=len(turned),
    )
    assert turned and sorted(first["turned"]) == sorted(second["turned"]) == sorted(turned)
    assert {x["nonce"] for x in reorged_out} == {x["nonce"] for x in first["sent"]}, reorged_out
    assert resent == [], resent
    # Both reorgs rolled back to a checkpoint above the deployment block, below the fork.
    assert len(rolled_back_to) == 2 and all(
        b is not None and node.start_block < b < since + 10 for b in rolled_back_to
    ), rolled_back_to
    assert result["missed"] == [] and result["duplicates"] == 0, result
    assert sum(result["auctions"].values()) == len(turned), result["auctions"]
