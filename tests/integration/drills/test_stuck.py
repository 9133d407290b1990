"""Drill `stuck`: the base fee jumps above what the bot's first transactions pay, right after
it sent them, and stays there (anvil_setNextBlockBaseFeePerGas before every block).

Each stuck transaction is re-signed at the same nonce after `replace_after_blocks` blocks with
both fees bumped and the max fee raised to cover the new base fee (anvil, like every node,
refuses a max fee below the base fee: a plain bump could never land), and is mined; every
nonce is used once, and the hourly spend cap (here 0.006 ETH, a few worst cases of 3M gas at
the spiked fees) holds: a bump or a new action that would pass it waits (logged), and what the
bot paid stays within it. Recovery: blocks and seconds from the first send to the last stuck
transaction mined.
"""

from __future__ import annotations

import time

from tests.integration.drills.support import (
    SIGNER_ADDRESSES,
    liquidatable,
    outcome,
    record_result,
    wait_for,
)

GWEI = 10**9
SPIKE = GWEI // 5  # 0.2 gwei: twice what the first transactions pay (0.1 gwei tip, 0 base)
CAP_ETH = 0.006
REPLACE_AFTER = 2
KEEPER = f"""  tx:
    max_fee_gwei: 5
    max_priority_fee_gwei: 0.1
    gas_limit: 3000000
    replace_after_blocks: {REPLACE_AFTER}
    bump_percent: 50
    hourly_spend_cap_eth: {CAP_ETH}
"""


def test_stuck(drill):
    node = drill.node
    node.interval_mining(0)  # blocks only when the drill mines them
    bot = drill.bot("bot", KEEPER).start(node.port)
    wait_for(lambda: bot.events("backfill"), 120, "the first backfill")
    since = node.head() + 1
    hashes = node.move_feeds(1800.0)
    node.mine()
    crash_block = node.head()
    assert all(int(node.receipt(h)["status"], 16) == 1 for h in hashes)
    turned = liquidatable(node, drill.accounts, crash_block)
    wait_for(lambda: len(bot.events("sent")) >= len(turned), 30, "the first sends")
    time.sleep(1.0)
    first_sends = bot.events("sent")
    started = time.monotonic()
    stuck = {x["nonce"] for x in first_sends}
    signer = SIGNER_ADDRESSES["TEST::3"]

    def mined_nonce() -> int:
        return int(node.rpc("eth_getTransactionCount", [signer, "latest"]), 16)

    blocks = 0
    while mined_nonce() <= max(stuck) and blocks < 30:
        node.rpc("anvil_setNextBlockBaseFeePerGas", [hex(SPIKE)])
        node.mine()
        blocks += 1
        time.sleep(1.0)
    recovered_blocks, recovery = node.head() - crash_block, time.monotonic() - started
    for _ in range(6):  # the fee is back to normal: the bids follow
        node.rpc("anvil_setNextBlockBaseFeePerGas", [hex(0)])
        node.mine()
        time.sleep(1.0)
    result = outcome(node, turned, since, [signer])
    replaced = bot.events("replaced")
    waits = [x for x in bot.events("stuck") if "spend cap" in x["why"]]
    refused = [x for x in bot.events("skip") if "spend cap" in x.get("why", "")]
    paid = sum(t["fee"] for t in result["transactions"])
    record_result(
        "stuck",
        missed=len(result["missed"]),
        duplicates=result["duplicates"],
        recovery_seconds=round(recovery, 2),
        recovery_blocks=recovered_blocks,
        recovery="first send -> every stuck transaction mined (blocks after the crash block)",
        stuck_transactions=len(stuck),
        replacements=len(replaced),
        replace_after_blocks=REPLACE_AFTER,
        spend_cap_eth=CAP_ETH,
        paid_eth=paid / 10**18,
        cap_waits=len(waits) + len(refused),
    )
    assert turned and mined_nonce() > max(stuck), (turned, bot.tail())
    assert result["missed"] == [] and result["duplicates"] == 0, result
    # Every stuck nonce was taken up after N blocks (replaced, or waiting for the spend cap),
    # and what got mined at that nonce is one of its replacements.
    sent_block = {x["nonce"]: x["block"] for x in first_sends}
    for nonce in stuck:
        mine = [x for x in replaced if x["nonce"] == nonce]
        assert mine, (nonce, replaced)
        first = min(x["block"] for x in mine + waits if x["nonce"] == nonce)
        assert first - sent_block[nonce] in (REPLACE_AFTER, REPLACE_AFTER + 1), (mine, waits)
        mined = [t for t in result["transactions"] if t["nonce"] == nonce]
        assert len(mined) == 1 and mined[0]["hash"] in {x["hash"] for x in mine}, mined
    finals = {x["nonce"]: x for x in bot.events("final")}
    assert all(finals[n]["replacements"] >= 1 and finals[n]["status"] == "ok" for n in stuck)
    # The spend cap held: it made something wait, and the bot paid less than it.
    assert waits or refused, bot.tail()
    assert paid <= CAP_ETH * 10**18
