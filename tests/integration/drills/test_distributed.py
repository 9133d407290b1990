"""Drill `distributed`: Silverback's runner and two `silverback worker` processes over a real
Redis server (taskiq-redis: a PubSub broker, so every worker receives every block task, and a
Redis result backend), the accounts sharded between the workers (`shard: {count: 2}`: each
worker evaluates and acts on its own mirror books only), each worker signing with its own key
and serving its own Prometheus metrics, scraped over HTTP.

Through a crash, every account that turns liquidatable gets its auction started once, by the
worker that owns it (the same outcome as one process: the chain's own list of liquidatable
accounts, all auctioned), no transaction reverts, and each worker's mirror equals the chain.
Recovery: seconds from the crash block to the last auction started.
"""

from __future__ import annotations

import json
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.drills.support import (
    BOT_SIGNERS,
    SIGNER_ADDRESSES,
    Redis,
    all_auctioned,
    crash,
    free_port,
    mirror_mismatches,
    outcome,
    record_result,
    wait_for,
)


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("kappa_keeper_")
    }


def test_distributed(drill):
    node = drill.node
    node.interval_mining(1)
    redis = Redis(drill.workdir)
    drill.redis.append(redis)
    broker = {
        "SILVERBACK_BROKER_CLASS": "taskiq_redis:PubSubBroker",
        "SILVERBACK_BROKER_KWARGS": json.dumps({"url": redis.url}),
        "SILVERBACK_RESULT_BACKEND_CLASS": "taskiq_redis:RedisAsyncResultBackend",
        "SILVERBACK_RESULT_BACKEND_KWARGS": json.dumps({"redis_url": redis.url}),
    }
    ports = [free_port(), free_port()]
    workers = [
        drill.bot(
            f"worker{i}",
            f"  shard_size: 2\n  shard: {{index: {i}, count: 2}}\n  metrics_port: {ports[i]}\n",
            signer=BOT_SIGNERS[i],
            command="worker",
            extra_env=broker,
        ).start(node.port)
        for i in range(2)
    ]
    wait_for(
        lambda: (
            all("Loaded Silverback Bot" in w.tail() for w in workers)
            or not all(w.alive() for w in workers)
        ),
        120,
        "the workers",
    )
    assert all(w.alive() for w in workers), [w.tail() for w in workers]
    time.sleep(3)  # subscribed to the broker (a PubSub message reaches listeners only)
    runner = drill.bot("runner", signer="", extra_env=broker).start(node.port)
    wait_for(
        lambda: all(w.events("backfill") for w in workers) or not runner.alive(),
        120,
        "both workers' backfill",
    )
    assert runner.alive(), runner.tail()
    since = node.head()
    started = time.monotonic()
    result_crash = crash(node, drill.accounts, [2200.0, 1800.0], wait_blocks=1)
    turned = sorted({a for s in result_crash["steps"] for a in s["newly"]})
    wait_for(lambda: all_auctioned(node, turned, since), 60, "every auction")
    recovery = time.monotonic() - started
    time.sleep(3)
    signers = [SIGNER_ADDRESSES[s] for s in BOT_SIGNERS]
    result = outcome(node, turned, since, signers)
    metrics = [scrape(p) for p in ports]
    starts = [[x for x in w.events("sent") if x["kind"] == "start_auction"] for w in workers]
    head = node.head()
    node.interval_mining(0)
    wait_for(lambda: all(w.processed() >= head - 1 for w in workers), 30, "the workers")
    time.sleep(1.0)
    views = [mirror_mismatches(node, drill.checkpoint(f"worker{i}")) for i in range(2)]
    record_result(
        "distributed",
        missed=len(result["missed"]),
        duplicates=result["duplicates"],
        recovery_seconds=round(recovery, 2),
        recovery="first crash step -> every auction started (one runner, two workers, Redis)",
        workers=2,
        starts_by_worker=[len(s) for s in starts],
        accounts_turned_liquidatable=len(turned),
        accounts_by_worker=[m.get("kappa_keeper_shard_accounts") for m in metrics],
        accounts=metrics[0].get("kappa_keeper_accounts"),
    )
    assert len(turned) >= 3, result_crash
    assert result["missed"] == [] and result["duplicates"] == 0, result
    # Every auction started once, each by one worker, and the workers' accounts are disjoint.
    assert sum(len(s) for s in starts) == sum(result["auctions"].values())
    mine = [{x["account"].lower() for x in s} for s in starts]
    assert all(mine) and not mine[0] & mine[1], starts
    assert {a.lower() for a in turned} <= set(result["auctions"])
    # The metrics: both workers mirror every account and each owns (evaluates, acts on) a share.
    mirrored = len(json.loads(drill.checkpoint("worker0").read_text())["accounts"])
    assert [m["kappa_keeper_accounts"] for m in metrics] == [mirrored, mirrored], metrics
    owned = [m["kappa_keeper_shard_accounts"] for m in metrics]
    assert sum(owned) == mirrored and all(0 < x < mirrored for x in owned), owned
    assert all(m["kappa_keeper_sent_start_auction_total"] >= 1 for m in metrics), metrics
    for block, mismatches in views:
        assert mismatches == [] and block >= head - 1
    assert runner.alive() and all(w.alive() for w in workers)
