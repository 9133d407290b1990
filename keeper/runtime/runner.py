"""A Silverback runner that survives the loss of its node: `silverback run --runner
keeper.runtime.runner:KeeperRunner keeper.runtime.bot:bot ...` (docs/keeper.md, "Faults").

Silverback's WebsocketRunner ends when its subscription drops (the process exits, a supervisor
must restart it), and its PollingRunner's block iterator ends on the first failed request. This
runner polls the head over the provider's HTTP connection instead, and on a failure backs off
(keeper.runtime.chain.Backoff: 1 s doubling to 30 s) and keeps polling, so the process and the
workers' state survive an RPC outage. It kicks the block task for the newest head only: the
keeper's block handler processes every block up to the head, so skipped heads cost nothing but
the work itself. With a Redis broker the same runner drives `silverback worker` processes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ape.logging import logger
from silverback.runner import PollingRunner
from silverback.utils import clean_hexbytes_dict

from keeper.runtime.chain import Backoff


class KeeperRunner(PollingRunner):
    """See the module."""

    poll_seconds = 0.5

    async def _block_task(self, task_data: Any) -> None:
        w3 = self.provider.web3
        backoff = Backoff(1.0, 30.0)
        last: int | None = None
        while not self.shutdown_event.is_set():
            try:
                head = await asyncio.to_thread(lambda: int(w3.eth.block_number))
                if head != last:  # a new head, or a shorter chain after a reorg
                    block = await asyncio.to_thread(w3.eth.get_block, head)
                    raw = clean_hexbytes_dict(dict(block))
                    self._runtime_task_group.create_task(self.run_task(task_data, raw))
                    last = head
            except Exception as exc:  # the node is unreachable: wait, then poll again
                delay = backoff.failure(time.time())
                logger.warning(f"head poll failed ({type(exc).__name__}); retry in {delay:.1f}s")
                await asyncio.sleep(delay)
                continue
            outage = backoff.success(time.time())
            if outage is not None:
                logger.info(f"node reachable again after {outage:.1f}s (head {last})")
            await asyncio.sleep(self.poll_seconds)
