"""Fixtures of the keeper fault drills (`make drills`; docs/keeper.md, "Faults").

The drills run only when KAPPA_DRILLS=1 (what `make drills` sets), so `make test` does not run
them twice in CI (.ci/run runs `make test`, then `make drills`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.drills.support import Bot, Node, Redis, Seeded, seed, write_config

if os.environ.get("KAPPA_DRILLS") != "1":
    collect_ignore_glob = ["test_*.py"]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed(tmp_path_factory.mktemp("seeded"))


@dataclass
class Drill:
    """One drill's node, bots and Redis servers, all stopped at the end."""

    workdir: Path
    node: Node
    accounts: list[str]
    bots: list[Bot] = field(default_factory=list)
    redis: list[Redis] = field(default_factory=list)

    def bot(self, name: str, extra: str = "", **kwargs: object) -> Bot:
        checkpoint = self.workdir / f"{name}.json"
        config = write_config(self.workdir / f"{name}.yaml", checkpoint, extra)
        b = Bot(name, self.workdir, self.node.records, config, **kwargs)  # type: ignore[arg-type]
        self.bots.append(b)
        return b

    def checkpoint(self, name: str) -> Path:
        return self.workdir / f"{name}.json"


@pytest.fixture
def drill(seeded: Seeded, tmp_path: Path) -> Iterator[Drill]:
    records = tmp_path / "deployments"
    shutil.copytree(seeded.records, records)
    node = Node(seeded.state, records, tmp_path / "anvil.log")
    d = Drill(tmp_path, node, list(seeded.accounts))
    try:
        yield d
    finally:
        for b in d.bots:
            b.stop()
        for r in d.redis:
            r.stop()
        node.stop()
