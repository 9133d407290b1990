"""kappa_ops.deployer's parts that need no node: record names, value rendering, one-line
errors, address checks against a fake provider, the next steps after a testnet deploy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kappa_ops.config import WAD, config_path, load_config
from kappa_ops.deployer import (
    Deployment,
    _render,
    _short,
    check_addresses,
    load_record,
    next_steps,
    record_path,
)
from kappa_ops.plan import Network, make_plan

SEPOLIA = load_config(config_path("base", "sepolia"), {"KAPPA_DEPLOYER": "ops"})


def test_records_are_keyed_by_network_and_chain_id(tmp_path: Path):
    base = record_path(Network("base", "local", True), 31337, tmp_path)
    arb = record_path(Network("arbitrum", "local", True), 31337, tmp_path)
    sepolia_lookalike = record_path(Network("base", "local", True), 84532, tmp_path)
    real = record_path(Network("base", "sepolia", False), 84532, tmp_path)
    assert base.name == "base-local-31337.json"
    assert len({base, arb, sepolia_lookalike, real}) == 4
    assert load_record(base) == {"contracts": {}, "calls": []}


def test_values_render_in_human_units_and_errors_in_one_line():
    assert _render(3 * WAD, "wad") == "3"
    assert _render(WAD // 100, "wad") == "0.01"
    assert _render(2**256 - 1, "wad") == "unlimited"
    assert _render(900, "int") == "900"
    message = _short(RuntimeError("Transaction failed.\n" + "ab" * 10_000))
    assert message == "Transaction failed."
    assert len(_short(RuntimeError("x" * 5000))) < 300


class FakeProvider:
    """Code and eth_call answers per address."""

    def __init__(self, code: dict[str, bytes], calls: dict[tuple[str, str], bytes]):
        self.code, self.calls = code, calls
        self.web3 = self
        self.eth = self

    def get_code(self, address: str) -> bytes:
        return self.code.get(address.lower(), b"")

    def call(self, tx: dict[str, Any]) -> bytes:
        key = (tx["to"].lower(), tx["data"])
        if key not in self.calls:
            raise RuntimeError("execution reverted")
        return self.calls[key]


def _word(x: int) -> bytes:
    return x.to_bytes(32, "big", signed=True)


def test_address_checks_name_the_key_in_one_line():
    assert SEPOLIA.tokens is not None
    cash, under = SEPOLIA.tokens.cash.lower(), SEPOLIA.tokens.underlying.lower()
    feed = SEPOLIA.oracle.sources[0].feed.lower()
    good = FakeProvider(
        {cash: b"\x60", under: b"\x60", feed: b"\x60"},
        {
            (cash, "0x313ce567"): _word(6),
            (under, "0x313ce567"): _word(18),
            (feed, "0x313ce567"): _word(8),
            (feed, "0xfeaf968c"): b"".join(_word(x) for x in (1, 3000 * 10**8, 1, 1, 1)),
        },
    )
    assert check_addresses(SEPOLIA, good, "base:sepolia") == []
    no_feed = FakeProvider({cash: b"\x60", under: b"\x60"}, good.calls)
    errors = check_addresses(SEPOLIA, no_feed, "base:sepolia")
    assert errors == [
        f"oracle.sources[0].feed {SEPOLIA.oracle.sources[0].feed}: no code on base:sepolia"
    ]
    silent = FakeProvider(good.code, {k: v for k, v in good.calls.items() if k[1] != "0xfeaf968c"})
    assert "latestRoundData() does not answer" in check_addresses(SEPOLIA, silent, "x")[0]


class Named:
    def __init__(self, address: str) -> None:
        self.address = address


def test_next_steps_after_a_testnet_deploy():
    plan = make_plan(SEPOLIA, Network("base", "sepolia", False), "0x" + "11" * 20)
    contracts = {n: Named("0x" + f"{i:040x}") for i, n in enumerate(plan.names, 1)}
    result = Deployment(84532, "base:sepolia:node", None, contracts, plan, Path("r.json"))
    lines: list[str] = []
    next_steps(result, lines.append)
    text = "\n".join(lines)
    assert "feed the vol oracle" in text and "list series" in text and "roles" in text
    assert "silverback run keeper.runtime.bot:bot --network base:sepolia:node --account" in text
