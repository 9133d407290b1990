"""Shared test configuration: Hypothesis profiles and in-process EVM fixtures.

Profiles (select with HYPOTHESIS_PROFILE; `make test` uses `ci`, `make fuzz` uses `deep`):
- quick: a smoke run while editing;
- ci: the default, what CI runs, a few minutes in all;
- deep: long runs for audits (multiply example counts by KAPPA_FUZZ_SCALE, default 20).
Tests that want "thousands of examples" call `scaled(n)`: n under ci, n/10 under quick and
n * KAPPA_FUZZ_SCALE under deep.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

# vvm (imported by titanoboa and ape) reads the compiler folder at import time: use the
# checkout's own, which `make setup` fills (see the Makefile).
os.environ.setdefault("VVM_BINARY_PATH", str(Path(__file__).resolve().parent.parent / ".vvm"))

import boa
import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
# Resolve `from contracts.math import wad` from the repository root, wherever pytest runs.
boa.interpret.set_search_paths([str(ROOT)])

_common = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
settings.register_profile("quick", max_examples=20, **_common)
settings.register_profile("ci", max_examples=100, derandomize=True, **_common)
settings.register_profile("deep", max_examples=2000, **_common)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
DEEP_SCALE = int(os.environ.get("KAPPA_FUZZ_SCALE", "20"))


def scaled(n: int) -> int:
    """Example count for a test that wants about n examples under the ci profile."""
    if PROFILE == "quick":
        return max(10, n // 10)
    if PROFILE == "deep":
        return n * DEEP_SCALE
    return n


def events(contract) -> list[tuple[str, dict]]:
    """(name, fields) of every event the contract's last call emitted, without the address."""
    out = []
    for log in contract.get_logs():
        fields = log._asdict()
        fields.pop("address")
        out.append((type(log).__name__, fields))
    return out


@functools.cache
def deployer(path: str):
    """The compiled contract (path relative to the repository root), compiled once per path
    and process: compiling the protocol takes ~18 s, deploying a compiled contract well under
    one."""
    return boa.load_partial(str(ROOT / path))


def load(path: str, *args):
    """Deploy a Vyper source (path relative to the repository root) with titanoboa, compiling
    it on its first use in this process."""
    return deployer(path).deploy(*args)


def new_transaction() -> None:
    """Make the next titanoboa call priced like the first call of a new transaction.

    titanoboa runs calls as messages inside one long py-evm transaction, keeping warm/cold access
    sets and EIP-2200 "original" storage values across calls. Committing the pending changes
    (`state.lock_changes()`) clears both, so later SSTOREs and SLOADs are priced as cold.
    """
    boa.env.evm.vm.state.lock_changes()


@pytest.fixture
def isolate():
    """Run the test inside a titanoboa anchor: every state change it makes is undone after it,
    so the module's deployments serve each test as they were set up. A module asks for it
    with `pytestmark = pytest.mark.usefixtures("isolate")`."""
    with boa.env.anchor():
        yield


@pytest.fixture(scope="module")
def proto():
    """The test protocol (tests/protocol.py) at START with a 60% ATM vol entry (no skew) on
    the weekly expiry `expiry_in(8)`, one per module, undone at the module's end."""
    from tests import protocol

    with boa.env.anchor():
        p = protocol.deploy()
        p.vol.update(protocol.expiry_in(8), 6 * 10**17, 0)
        yield p


@pytest.fixture(scope="session")
def lens():
    """PricingLens: the math modules exposed as external views."""
    return load("tests/contracts/PricingLens.vy")


@pytest.fixture(scope="module")
def calc():
    """A RiskCalculator (stateless: the margin model behind external views), one per module."""
    return load("contracts/margin/RiskCalculator.vy")
