"""Which keeper acts on what: shards of accounts across workers or bots, and takeover (pure).

Accounts are owned by mirror row blocks: row r belongs to shard `(r // shard_size) % count`.
A mirror's rows are the accounts in order of first appearance in the canonical event log from
the deployment block, so every worker or bot that mirrors the same chain numbers them alike,
and a shard is a set of whole cached series books (keeper.runtime.mirror), so a worker that
evaluates only its shard does a `1/count` share of the per-block work. Actions without an
account (`settle_expiry`) belong to the shard of a hash of their key.

Two modes (the `shard:` settings):
- workers of one distributed bot (`takeover_blocks: null`): a worker evaluates and acts on its
  own shard only; a dead worker is restarted by its supervisor (it resumes from its checkpoint);
- independent bots (`takeover_blocks: k`): each evaluates every account, acts at once on its own
  shard, and on another shard's action only after the same action stayed due for k blocks
  (its owner is down or stuck), so bots never send the same bid in the same block and one bot's
  outage leaves nothing unattended for longer than k blocks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


def row_owner(rows: NDArray[np.int64], shard_size: int, count: int) -> NDArray[np.int64]:
    """The shard of each mirror row (vectorized)."""
    return (np.asarray(rows, dtype=np.int64) // shard_size) % count


def key_owner(key: tuple[str, str], count: int) -> int:
    """The shard of an action without an account row (a stable hash of its key)."""
    digest = hashlib.sha256(f"{key[0]}:{key[1]}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def own_books(n_books: int, index: int, count: int) -> list[int]:
    """The cached books (blocks of shard_size rows) of shard `index`."""
    return [k for k in range(n_books) if k % count == index]


@dataclass
class Takeover:
    """Admits actions: own ones at once, others after `blocks` blocks of being due (see the
    module; `blocks` None: never)."""

    index: int
    count: int
    blocks: int | None
    due_since: dict[tuple[str, str], int] = field(default_factory=dict)
    taken: set[tuple[str, str]] = field(default_factory=set)  # reported once while due

    def admit(
        self, keys: list[tuple[str, str]], owners: list[int], block: int
    ) -> tuple[list[bool], list[tuple[str, str]]]:
        """For each action (its key and its shard): may this keeper send it now? Also returns
        the foreign keys taken over this block (each once while it stays due). Keys not due
        this block are forgotten, so a takeover waits `blocks` consecutive blocks."""
        if self.count == 1:
            return [True] * len(keys), []
        seen = set(keys)
        self.due_since = {k: b for k, b in self.due_since.items() if k in seen}
        self.taken &= seen
        allowed, taken = [], []
        for key, owner in zip(keys, owners, strict=True):
            if owner == self.index:
                allowed.append(True)
                continue
            first = self.due_since.setdefault(key, block)
            ok = self.blocks is not None and block - first >= self.blocks
            allowed.append(ok)
            if ok and key not in self.taken:
                self.taken.add(key)
                taken.append(key)
        return allowed, taken
