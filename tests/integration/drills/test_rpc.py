"""Drill `rpc`: the bot's connection to its node goes through a TCP proxy that is cut for 30 s
in the middle of a crash and then restored.

The bot process keeps running (keeper.runtime.runner.KeeperRunner backs off instead of
exiting), catches up the blocks it missed with one ranged log read, reports its lag and starts
every auction the crash called for; nothing is missed or sent twice. Recovery: seconds from the
restore to the first processed block at or past the head at the restore.
"""

from __future__ import annotations

import re
import time

from tests.integration.drills.support import (
    SIGNER_ADDRESSES,
    Proxy,
    all_auctioned,
    crash,
    mirror_mismatches,
    outcome,
    record_result,
    wait_for,
)

CUT_SECONDS = 30


def test_rpc(drill):
    node = drill.node
    node.interval_mining(1)
    proxy = Proxy(node.port)
    bot = drill.bot("bot").start(proxy.port)
    wait_for(lambda: bot.events("backfill"), 120, "the first backfill")
    since = node.head()
    first = crash(node, drill.accounts, [2600.0])
    wait_for(lambda: bot.processed() >= first["steps"][0]["block"], 30, "the first step")
    proxy.cut()
    cut_at = time.monotonic()
    cut_block = node.head()
    rest = crash(node, drill.accounts, [2200.0, 1800.0], wait_blocks=1)
    time.sleep(max(CUT_SECONDS - (time.monotonic() - cut_at), 0))
    assert bot.alive(), bot.tail()
    head = node.head()
    proxy.restore()
    restored = time.monotonic()
    wait_for(lambda: bot.processed() >= head, 90, "the bot back at the head")
    recovery = time.monotonic() - restored
    steps = first["steps"] + rest["steps"]
    turned = sorted({a for s in steps for a in s["newly"]})
    wait_for(lambda: all_auctioned(node, turned, since), 60, "every auction")
    time.sleep(3)
    result = outcome(node, turned, since, [SIGNER_ADDRESSES["TEST::3"]])
    block, mismatches = mirror_mismatches(node, drill.checkpoint("bot"))
    text = bot.log.read_text(errors="replace")
    retries = [float(x) for x in re.findall(r"head poll failed \(\w+\); retry in ([\d.]+)s", text)]
    lags = [x["lag_blocks"] for x in bot.events("risk")]
    errors = bot.events("error")
    record_result(
        "rpc",
        missed=len(result["missed"]),
        duplicates=result["duplicates"],
        recovery_seconds=round(recovery, 2),
        recovery="proxy restored -> first processed block at the head",
        cut_seconds=CUT_SECONDS,
        blocks_behind_at_restore=head - cut_block,
        lag_reported_blocks=max(lags),
        head_poll_retries=retries,
        keeper_errors=len(errors),
        accounts_turned_liquidatable=len(turned),
    )
    assert bot.alive() and bot.starts == 1, bot.tail()
    assert len(turned) >= 3, steps
    assert result["missed"] == [] and result["duplicates"] == 0, result
    # It backed off: doubling delays (1, 2, 4, 8, ... s), a handful of attempts in 30 s.
    assert retries and len(retries) <= 8, retries
    assert retries[:4] == sorted(retries[:4]) and max(retries) >= 8, retries
    # It caught up with one ranged read and reported how far behind it was.
    assert max(lags) >= (head - cut_block) - 3, lags
    assert mismatches == [] and block >= head
    assert all("retry_in" in x for x in errors), errors
