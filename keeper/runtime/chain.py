"""Chain I/O of the keeper bot: the event reader, the market read and the drift-check reads.

`EventReader.logs(start, end)` is one `eth_getLogs` over the engine and the liquidator
(both addresses, every topic) for a block range, decoded with the contracts' ABIs into
`keeper.runtime.mirror.Event`s in log order; `backfill` walks from the deployment block in
chunks of `backfill_chunk` blocks. Block timestamps are fetched only for blocks that need one,
once per block: AuctionStarted (the auction's start) and every event that touches cash (the
engine accrued interest at that block, so the mirror's accrual time follows it).

`MarketReader` reads the oracle answer, the vol entries of every listed expiry and (once) the
margin and Liquidator parameters, with kappa_ops.chain.ChainReader's batching (Multicall3 when
the chain has it) and its conversion into `keeper.margin.Market`.

`AccountReader` reads what the drift check compares at a given block: cash shares, cash debt,
the underlying balance, the packed positions and the auction start of a few accounts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import encode_hex, to_checksum_address

from keeper import margin as km
from keeper.runtime.mirror import (
    CASH_TOUCHES,
    ENGINE_EVENTS,
    LIQUIDATOR_EVENTS,
    PERP_EVENTS,
    Event,
)
from keeper.runtime.planner import LiquidatorTerms

# Events whose block timestamp the mirror needs.
_TIMESTAMPED = CASH_TOUCHES | {"AuctionStarted"}

# The two AggregatorV3 reads settlement needs (Chainlink's interface,
# contracts/interfaces/IAggregatorV3.vyi): enough ABI to bind any source feed.
_ROUND = [
    {"name": "roundId", "type": "uint80"},
    {"name": "answer", "type": "int256"},
    {"name": "startedAt", "type": "uint256"},
    {"name": "updatedAt", "type": "uint256"},
    {"name": "answeredInRound", "type": "uint80"},
]
AGGREGATOR_V3_READS = [
    {
        "type": "function",
        "name": "latestRoundData",
        "stateMutability": "view",
        "inputs": [],
        "outputs": _ROUND,
    },
    {
        "type": "function",
        "name": "getRoundData",
        "stateMutability": "view",
        "inputs": [{"name": "_roundId", "type": "uint80"}],
        "outputs": _ROUND,
    },
]


def settlement_hints(oracle: Any, expiry: int) -> list[int]:
    """The round-id hints of `settle_expiry(expiry, hints)` for the aggregator's sources, read
    from each feed's round history (keeper/settlement.py)."""
    from ape import Contract

    from keeper.settlement import source_hints

    return source_hints(oracle, lambda a: Contract(a, abi=AGGREGATOR_V3_READS), expiry)


@dataclass
class Backoff:
    """Retry spacing after RPC failures (pure): the first retry after `initial` seconds, then
    doubling up to `maximum`; a success resets it. `ready(now)` says whether to try now, so
    block deliveries during an outage cost nothing but a clock read."""

    initial: float
    maximum: float
    failures: int = 0
    retry_at: float = 0.0
    down_since: float | None = None

    def ready(self, now: float) -> bool:
        return now >= self.retry_at

    def failure(self, now: float) -> float:
        """Record a failure at `now`; returns the delay before the next attempt."""
        if self.down_since is None:
            self.down_since = now
        delay = min(self.initial * 2.0**self.failures, self.maximum)
        self.failures += 1
        self.retry_at = now + delay
        return delay

    def success(self, now: float) -> float | None:
        """Record a success; returns how long the outage lasted (None if there was none)."""
        outage = None if self.down_since is None else now - self.down_since
        self.failures, self.retry_at, self.down_since = 0, 0.0, None
        return outage


class ChainIOError(RuntimeError):
    """A chain read that failed in a way the bot reports as one line."""


@dataclass(frozen=True)
class DeploymentInfo:
    chain_id: int
    addresses: dict[str, str]
    start_block: int  # the engine's (and liquidator's) deployment block


def load_deployment(
    records_dir: Path, ecosystem: str, network: str, chain_id: int
) -> DeploymentInfo:
    """The deployer's record of a network (`kappa_ops.deployer.record_path`:
    `<ecosystem>-<network>-<chain-id>.json`): addresses and the first block to read events
    from."""
    from kappa_ops.deployer import record_path
    from kappa_ops.plan import Network

    where = Network(ecosystem=ecosystem, name=network, is_local=False)
    path = record_path(where, chain_id, Path(records_dir))
    if not path.is_file():
        raise ChainIOError(f"{path}: no deployment record (run `ape run deploy` first)")
    try:
        contracts = json.loads(path.read_text())["contracts"]
        addresses = {name: str(e["address"]) for name, e in contracts.items()}
        blocks = [int(contracts[n]["block"]) for n in ("engine", "liquidator") if n in contracts]
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ChainIOError(f"{path}: malformed record ({type(exc).__name__}: {exc})") from None
    for needed in ("engine", "liquidator", "oracle", "vol_oracle"):
        if needed not in addresses:
            raise ChainIOError(f"{path}: no {needed!r} in the record")
    return DeploymentInfo(chain_id, addresses, min(blocks) if blocks else 0)


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return encode_hex(bytes(value))
    return str(value)


def _plain(value: Any) -> Any:
    """ape-decoded argument values as plain Python (checksummed addresses, ints, bools)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, bool | int):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__") or hasattr(value, "model_dump"):
        return value
    return value


class EventReader:
    """Decoded engine and liquidator logs for block ranges (see the module)."""

    def __init__(
        self, provider: Any, engine: Any, liquidator: Any, perp_book: Any | None = None
    ) -> None:
        self.provider = provider
        self.w3 = provider.web3
        self.ecosystem = provider.network.ecosystem
        sources = [(engine, ENGINE_EVENTS), (liquidator, LIQUIDATOR_EVENTS)]
        if perp_book is not None:
            sources.append((perp_book, PERP_EVENTS))
        self.addresses = [str(c.address) for c, _ in sources]
        self.abis: dict[str, list[Any]] = {}
        for contract, names in sources:
            events = {e.name: e for e in contract.contract_type.events}
            missing = [n for n in names if n not in events]
            if missing:
                raise ChainIOError(f"{contract.address}: ABI has no event {missing[0]}")
            self.abis[str(contract.address).lower()] = [events[n] for n in names]
        # Keyed by block hash: after a reorg a block number names another block, with
        # another timestamp.
        self._timestamps: dict[str, int] = {}

    def head(self) -> int:
        return int(self.w3.eth.block_number)

    def block_hash(self, number: int) -> str:
        return _hex(self.w3.eth.get_block(number)["hash"])

    def timestamp(self, block_hash: str) -> int:
        """The timestamp of the block with this hash."""
        ts = self._timestamps.get(block_hash)
        if ts is None:
            ts = int(self.w3.eth.get_block(block_hash)["timestamp"])
            if len(self._timestamps) > 4096:
                self._timestamps.clear()
            self._timestamps[block_hash] = ts
        return ts

    def logs(self, start: int, end: int) -> list[Event]:
        """Every engine and liquidator event in [start, end], in log order."""
        if end < start:
            return []
        raw = self.w3.eth.get_logs({"fromBlock": start, "toBlock": end, "address": self.addresses})
        groups: dict[str, list[dict[str, Any]]] = {}
        for log in raw:
            address = str(log["address"]).lower()
            groups.setdefault(address, []).append(
                {
                    "address": to_checksum_address(address),
                    "topics": [_hex(t) for t in log["topics"]],
                    "data": _hex(log["data"]),
                    "blockNumber": int(log["blockNumber"]),
                    "blockHash": _hex(log["blockHash"]),
                    "transactionHash": _hex(log["transactionHash"]),
                    "transactionIndex": int(log["transactionIndex"]),
                    "logIndex": int(log["logIndex"]),
                }
            )
        out: list[Event] = []
        # One decoding pass per contract (events the mirror does not use are skipped), then
        # the logs of both contracts back in (block, log index) order.
        for address, entries in groups.items():
            for d in self.ecosystem.decode_logs(entries, *self.abis[address]):
                block = int(d.block_number)
                args = {k: _plain(v) for k, v in d.event_arguments.items()}
                ts = self.timestamp(_hex(d.block_hash)) if d.event_name in _TIMESTAMPED else 0
                out.append(Event(d.event_name, block, int(d.log_index), args, ts))
        out.sort(key=lambda e: (e.block, e.index))
        return out

    def chunks(self, start: int, end: int, size: int) -> Iterator[tuple[int, int]]:
        lo = start
        while lo <= end:
            hi = min(lo + size - 1, end)
            yield lo, hi
            lo = hi + 1


class MarketReader:
    """Market and parameters for keeper.margin (kappa_ops.chain.ChainReader does the reads)."""

    def __init__(self, engine: Any, oracle: Any, vol: Any, liquidator: Any) -> None:
        from kappa_ops.chain import ChainReader

        self.reader = ChainReader(engine, oracle, vol, None)
        self.engine, self.oracle, self.vol, self.liquidator = engine, oracle, vol, liquidator
        self.params = self.reader.params
        self.terms = self.read_terms()

    def refresh_params(self) -> None:
        self.params = self.reader._params()
        self.terms = self.read_terms()

    def read_terms(self) -> LiquidatorTerms:
        liq = self.liquidator
        values = self.reader.batch(
            [
                (getattr(liq, n), ())
                for n in ("d_start", "d_max", "duration", "fund_share", "buffer", "dust")
            ]
        )
        return LiquidatorTerms.from_wads(*(int(v) for v in values))

    def market(
        self, expiries: Sequence[int], settlement: dict[int, int], now: int
    ) -> tuple[km.Market, tuple[Any, ...]]:
        """keeper.margin.Market at the latest block for the listed expiries, and a key that
        changes whenever any input of the model other than time does."""
        live = [int(e) for e in expiries]
        calls: list[tuple[Any, tuple[Any, ...]]] = [(self.oracle.price, ())]
        calls += [(self.vol.entry, (e,)) for e in live]
        results = self.reader.batch(calls)
        spot, conf, _ = (int(x) for x in _fields(results[0]))
        entries = results[1:]
        prices = [settlement.get(e, 0) for e in live]
        market = self.reader.market(spot, conf, now, live, entries, prices)
        key = (
            spot,
            conf,
            tuple(tuple(int(v) for v in _fields(x)) for x in entries),
            tuple(prices),
            tuple(
                float(m) for m in (market.stale_markup if market.stale_markup is not None else ())
            ),
        )
        return market, key


def _fields(value: Any) -> tuple[Any, ...]:
    from kappa_ops.chain import _fields as fields

    return fields(value)


@dataclass(frozen=True)
class ChainAccount:
    shares: int
    debt: int
    underlying: int
    words: tuple[int, ...]
    auction_start: int
    perp: tuple[int, int, int] = (0, 0, 0)


class AccountReader:
    """The drift check's reads: each account's storage-level state at one block."""

    def __init__(self, engine: Any, liquidator: Any, perp_book: Any | None = None) -> None:
        self.engine, self.liquidator, self.perp_book = engine, liquidator, perp_book

    def read(self, address: str, block: int) -> ChainAccount:
        e, liq = self.engine, self.liquidator
        kw = {"block_id": block}
        perp = (0, 0, 0)
        if self.perp_book is not None:
            q, price, index = self.perp_book.position(address, **kw)
            perp = (int(q), int(price), int(index))
        return ChainAccount(
            shares=int(e.cash_shares(address, **kw)),
            debt=int(e.cash_debt(address, **kw)),
            underlying=int(e.underlying_balance(address, **kw)),
            words=tuple(int(w) for w in e.packed_positions(address, **kw)),
            auction_start=int(liq.auction_start(address, **kw)),
            perp=perp,
        )

    def margin(self, address: str, block: int) -> tuple[int, int, int]:
        mtm, h_im, h_mm = (int(x) for x in self.engine.margin(address, block_id=block))
        return mtm, h_im, h_mm
