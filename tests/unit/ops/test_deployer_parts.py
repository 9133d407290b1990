"""kappa_ops.deployer's parts that need no node: record names, value rendering, one-line
errors, address checks against a fake provider, the set-once books' pre-flight, the next steps
after a testnet deploy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kappa_ops.config import WAD, config_path, load_config
from kappa_ops.deployer import (
    Deployment,
    _blocked,
    _render,
    _short,
    check_addresses,
    load_record,
    next_steps,
    record_path,
)
from kappa_ops.plan import ZERO_ADDRESS, Network, make_plan
from keeper.perp import PerpParams

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
    lane = PerpParams(WAD // 50, 1800, 8, WAD // 2000).pack()
    assert _render(lane, "perp") == (
        "band 0.02, half_life 1800, convergence_hours 8, max_rate 0.0005"
    )
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
    book = contracts["order_book"].address
    assert f"makers sign orders for OrderBook({book})" in text
    assert "silverback run keeper.runtime.bot:bot --network base:sepolia:node --account" in text


class FakeEngine:
    """An engine whose books are (possibly) set."""

    def __init__(self, address: str, order_book: str, perp_book: str) -> None:
        self.address = address
        self._books = {"order_book": order_book, "perp_book": perp_book}

    def order_book(self) -> str:
        return self._books["order_book"]

    def perp_book(self) -> str:
        return self._books["perp_book"]


def test_a_kept_engine_whose_book_is_set_blocks_a_new_book_before_anything_is_sent():
    local = load_config(config_path("base", "local"))
    plan = make_plan(local, Network("base", "local", True), "0x" + "11" * 20)
    engine, book, perps = "0x" + "e" * 40, "0x" + "b" * 40, "0x" + "c" * 40
    record = Path("deployments/base-local-31337.json")
    # A fresh engine (books unset): nothing blocks, whatever this run deploys.
    fresh = {"engine": FakeEngine(engine, ZERO_ADDRESS, ZERO_ADDRESS)}
    assert _blocked(plan, fresh, {"engine": engine}, record) == []
    # Both books set and kept at the addresses the engine has: nothing blocks.
    wired = {
        "engine": FakeEngine(engine, book, perps),
        "order_book": Named(book),
        "perp_book": Named(perps),
    }
    addresses = {"engine": engine, "order_book": book.upper(), "perp_book": perps}
    assert _blocked(plan, wired, addresses, record) == []
    # The order book's entry is gone (this run would deploy a new one): blocked, in one line.
    lost = {"engine": wired["engine"], "perp_book": wired["perp_book"]}
    lines = _blocked(plan, lost, {"engine": engine, "perp_book": perps}, record)
    assert lines == [
        f"engine orders book: engine {engine} already has order_book() = {book}, which it sets "
        "once, so it cannot take a new order_book; restore that contract's entry in "
        f"{record}, or remove engine's to redeploy it and what is built on it"
    ]
    # A kept book other than the engine's: blocked too.
    other = {**wired, "perp_book": Named("0x" + "d" * 40)}
    lines = _blocked(plan, other, {**addresses, "perp_book": "0x" + "d" * 40}, record)
    assert len(lines) == 1 and lines[0].startswith("engine perps book: ")
    assert "cannot take <perp_book>" in lines[0]
