"""A small, fast in-process EVM for tests and benchmarks: revm (Rust) through `pyrevm`.

titanoboa runs on py-evm at about 2 M gas/s; revm runs the same bytecode a few hundred times
faster, which decides how many steps a stateful fuzzer can afford. This module keeps only what the
property suite needs:

    chain = Chain()                                   # funded accounts, block time START
    usd = chain.deploy("contracts/mocks/MockERC20.vy", "USD Coin", "USDC", 6)
    usd.mint(chain.alice, 10**6)                      # state-changing call, sent by the deployer
    usd.transfer(chain.bob, 5, sender=chain.alice)    # ... or by anyone
    usd.balanceOf(chain.bob)                          # views: eth_call, decoded return value
    usd.get_logs()                                    # events of the last call, decoded by the ABI
    chain.gas_used                                    # gas of the last call (revm's figure)
    with chain.anchor():                              # snapshot / revert (also .snapshot/.revert)
        ...
    with chain.reverts("erc20: insufficient balance"):
        usd.transfer(chain.bob, 10**9, sender=chain.alice)
    chain.time_travel(seconds=3600)                   # block.timestamp (+ block.number) move

Semantics worth knowing:
- Contracts are compiled with the Vyper compiler in this environment (default settings, imports
  resolved from the repository root) and cached per process by path and modification time.
- Arguments and return values use eth-abi's Python types: structs are tuples, addresses are
  hex strings (lowercase when decoded), `bytesN` are `bytes`. A function with one return value
  returns it; several (or a struct) return a tuple; none returns None.
- All calls run inside one long revm transaction, as in titanoboa: accounts and slots stay warm
  across calls, transient storage is not cleared, and the caller pays no gas. `chain.commit()`
  ends that transaction (warm sets reset) but invalidates every earlier snapshot.
- `view`/`pure` functions run as static calls and leave no trace (a snapshot is reverted after
  them), so a view never warms a slot for the next call.
- `gas_used` is what revm reports for the message: execution gas plus the 21,000 intrinsic gas
  and calldata cost, after refunds.
- A revert raises `Reverted` with `reason` (the decoded `Error(string)`, or None) and the raw
  `data`; an exceptional halt (out of gas, invalid opcode, static-state change) raises `Halted`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi.decoding import ContextFramesBytesIO, TupleDecoder
from eth_abi.encoding import TupleEncoder
from eth_abi.grammar import ABIType, BasicType, TupleType, parse
from eth_abi.registry import registry
from eth_utils import keccak
from pyrevm import EVM, BlockEnv, CfgEnv, Env, JournalCheckpoint

from tests.deployment import START  # the default block time: 08:00 UTC on a day near 2027

ROOT = Path(__file__).resolve().parent.parent.parent

SPEC = "CANCUN"
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

_REVERT = re.compile(r"Revert \{ gas_used: (\d+), output: 0x([0-9a-fA-F]*) \}")
_HALT = re.compile(r"Halt \{ reason: (.*), gas_used: (\d+) \}")


class Reverted(Exception):  # noqa: N818 - reads better at call sites than RevertedError
    """The call reverted. `reason` is the decoded Error(string) (None for a bare revert)."""

    def __init__(self, reason: str | None, data: bytes = b"", gas_used: int = 0) -> None:
        super().__init__(reason if reason is not None else f"revert 0x{data.hex()}")
        self.reason = reason
        self.data = data
        self.gas_used = gas_used


class Halted(Exception):  # noqa: N818
    """The call halted exceptionally (out of gas, invalid opcode, state change in a static call)."""

    def __init__(self, reason: str, gas_used: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.gas_used = gas_used


def decode_revert(data: bytes) -> str | None:
    """The reason of an Error(string) revert payload, 'panic 0x..' for Panic(uint256), else None."""
    if data[:4] == ERROR_SELECTOR:
        return str(_decoder(("string",))(ContextFramesBytesIO(data[4:]))[0])
    if data[:4] == PANIC_SELECTOR and len(data) >= 36:
        return f"panic 0x{int.from_bytes(data[4:36], 'big'):02x}"
    return None


# ---------------------------------------------------------------------------------------------
# ABI plumbing: one precompiled encoder/decoder per function and event
# ---------------------------------------------------------------------------------------------


@cache
def _encoder(types: tuple[str, ...]) -> Callable[[Any], bytes]:
    """Encoder of an argument tuple: the fast one below, or eth-abi's for types it lacks."""
    try:
        return _fast_tuple([parse(t) for t in types])
    except NotImplementedError:
        return _eth_abi_encoder(types)


@cache
def _eth_abi_encoder(types: tuple[str, ...]) -> Callable[[Any], bytes]:
    """eth-abi's encoder of an argument tuple (the empty one included, which its parser rejects)."""
    return TupleEncoder(encoders=[registry.get_encoder(t) for t in types])


# A direct ABI encoder: eth-abi spends ~0.6 ms encoding a 16-position portfolio, a third of the
# EVM time of the margin check itself. This one handles (u)intN, bool, address, bytesN, bytes,
# string, tuples and arrays, with range checks; anything else falls back to eth-abi.
Encode = Callable[[Any], bytes]
_ZERO32 = bytes(32)


def _fast(t: ABIType) -> tuple[Encode, bool]:
    """(encoder, is_dynamic) of one parsed type."""
    if t.arrlist:
        item, dims = t.item_type, t.arrlist[-1]
        enc_item, item_dynamic = _fast(item)
        if dims:  # T[k]: a k-tuple
            k = dims[0]
            inner = _tuple_of([enc_item] * k, [item_dynamic] * k)

            def static_array(v: Any) -> bytes:
                if len(v) != k:
                    raise ValueError(f"expected {k} items, got {len(v)}")
                return inner(v)

            return static_array, item_dynamic
        return _dynamic_array(enc_item, item_dynamic), True
    if isinstance(t, TupleType):
        parts = [_fast(c) for c in t.components]
        n = len(parts)
        inner = _tuple_of([p[0] for p in parts], [p[1] for p in parts])

        def tuple_(v: Any) -> bytes:
            if len(v) != n:
                raise ValueError(f"expected a {n}-tuple, got {len(v)} items")
            return inner(v)

        return tuple_, any(p[1] for p in parts)
    assert isinstance(t, BasicType)
    return _basic(t.base, t.sub)


def _basic(base: str, sub: Any) -> tuple[Encode, bool]:
    if base == "uint":
        bound = 1 << int(sub)

        def uint(v: int) -> bytes:
            if not 0 <= v < bound:
                raise ValueError(f"uint{sub} out of range: {v}")
            return int(v).to_bytes(32, "big")

        return uint, False
    if base == "int":
        half = 1 << (int(sub) - 1)

        def sint(v: int) -> bytes:
            if not -half <= v < half:
                raise ValueError(f"int{sub} out of range: {v}")
            return int(v).to_bytes(32, "big", signed=True)

        return sint, False
    if base == "bool":

        def boolean(v: bool) -> bytes:
            if not isinstance(v, bool):
                raise TypeError(f"expected a bool, got {v!r}")
            return _ZERO32[:31] + (b"\x01" if v else b"\x00")

        return boolean, False
    if base == "address":

        def address(v: str | bytes) -> bytes:
            raw = bytes.fromhex(v[2:] if v[:2] in ("0x", "0X") else v) if isinstance(v, str) else v
            if len(raw) != 20:
                raise ValueError(f"not an address: {v!r}")
            return _ZERO32[:12] + raw

        return address, False
    if base == "bytes" and sub:
        size = int(sub)

        def fixed_bytes(v: bytes) -> bytes:
            if len(v) > size:
                raise ValueError(f"bytes{size} too long: {len(v)}")
            return bytes(v).ljust(32, b"\x00")

        return fixed_bytes, False
    if base in ("bytes", "string"):

        def dynamic_bytes(v: bytes | str) -> bytes:
            raw = v.encode() if isinstance(v, str) else bytes(v)
            padded = raw.ljust((len(raw) + 31) // 32 * 32, b"\x00")
            return len(raw).to_bytes(32, "big") + padded

        return dynamic_bytes, True
    raise NotImplementedError(base)


def _tuple_of(encoders: list[Encode], dynamic: list[bool]) -> Encode:
    """Head/tail encoding of a sequence of values with the given encoders."""
    if not any(dynamic):

        def static_tuple(v: Sequence[Any]) -> bytes:
            return b"".join([e(x) for e, x in zip(encoders, v, strict=True)])

        return static_tuple

    def dynamic_tuple(v: Sequence[Any]) -> bytes:
        # Static members sit inline in the head (a static tuple takes more than one word), so
        # the offsets of the tails are known once every member is encoded.
        parts = [e(x) for e, x in zip(encoders, v, strict=True)]
        offset = sum(32 if d else len(p) for p, d in zip(parts, dynamic, strict=True))
        heads: list[bytes] = []
        tails: list[bytes] = []
        for p, d in zip(parts, dynamic, strict=True):
            if d:
                heads.append(offset.to_bytes(32, "big"))
                tails.append(p)
                offset += len(p)
            else:
                heads.append(p)
        return b"".join(heads) + b"".join(tails)

    return dynamic_tuple


def _dynamic_array(enc_item: Encode, item_dynamic: bool) -> Encode:
    if not item_dynamic:

        def static_items(v: Sequence[Any]) -> bytes:
            return len(v).to_bytes(32, "big") + b"".join([enc_item(x) for x in v])

        return static_items

    def dynamic_items(v: Sequence[Any]) -> bytes:
        n = len(v)
        return n.to_bytes(32, "big") + _tuple_of([enc_item] * n, [True] * n)(v)

    return dynamic_items


def _fast_tuple(types: list[ABIType]) -> Encode:
    parts = [_fast(t) for t in types]
    inner = _tuple_of([p[0] for p in parts], [p[1] for p in parts])
    n = len(parts)

    def encode(args: Sequence[Any]) -> bytes:
        if len(args) != n:
            raise ValueError(f"expected {n} arguments, got {len(args)}")
        return inner(args)

    return encode


@cache
def _decoder(types: tuple[str, ...]) -> Callable[[ContextFramesBytesIO], tuple[Any, ...]]:
    return TupleDecoder(decoders=[registry.get_decoder(t) for t in types])


Decode = Callable[[bytes, int], Any]


@cache
def _return_decoder(types: tuple[str, ...]) -> Callable[[bytes], tuple[Any, ...]]:
    """Decoder of a return tuple: a direct one when every type is a static basic type or a
    dynamic array of one (the common case: ~40x faster than eth-abi on a uint256[] of 60 words),
    else eth-abi's (strict validation of padding and pointers)."""
    try:
        parts = [_fast_decode(parse(t)) for t in types]
    except NotImplementedError:
        eth_abi = _decoder(types)
        return lambda raw: eth_abi(ContextFramesBytesIO(raw))

    def decode(raw: bytes) -> tuple[Any, ...]:
        return tuple(part(raw, 32 * i) for i, part in enumerate(parts))

    return decode


def _fast_decode(t: ABIType) -> Decode:
    """Decoder of one head word at an offset (a dynamic array follows its pointer)."""
    if isinstance(t, TupleType):
        raise NotImplementedError("tuple")
    if t.arrlist:
        if len(t.arrlist) != 1 or t.arrlist[0]:
            raise NotImplementedError("static or nested array")
        item = _basic_decode(t.item_type)

        def dynamic_array(raw: bytes, at: int) -> list[Any]:
            start = int.from_bytes(raw[at : at + 32], "big")
            n = int.from_bytes(raw[start : start + 32], "big")
            return [item(raw, start + 32 * (k + 1)) for k in range(n)]

        return dynamic_array
    return _basic_decode(t)


def _basic_decode(t: ABIType) -> Decode:
    if not isinstance(t, BasicType) or t.arrlist:
        raise NotImplementedError(str(t))
    base, sub = t.base, t.sub
    if base == "uint":
        return lambda raw, at: int.from_bytes(raw[at : at + 32], "big")
    if base == "int":
        return lambda raw, at: int.from_bytes(raw[at : at + 32], "big", signed=True)
    if base == "bool":
        return lambda raw, at: raw[at + 31] == 1
    if base == "address":
        return lambda raw, at: "0x" + raw[at + 12 : at + 32].hex()
    if base == "bytes" and sub:
        size = int(sub)
        return lambda raw, at: raw[at : at + size]
    raise NotImplementedError(base)


def abi_type(item: dict[str, Any]) -> str:
    """The canonical ABI type of an ABI input/output entry (tuples spelled out)."""
    t: str = item["type"]
    if t.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in item["components"])
        return f"({inner}){t[5:]}"
    return t


def _tuple(types: Sequence[str]) -> str:
    return "(" + ",".join(types) + ")"


@dataclass(frozen=True)
class Event:
    """A decoded log: the event name, its fields by name and the emitting address."""

    name: str
    args: dict[str, Any]
    address: str

    def __getattr__(self, item: str) -> Any:
        try:
            return self.args[item]
        except KeyError:
            raise AttributeError(item) from None


@dataclass
class _EventABI:
    name: str
    names: list[str]
    indexed: list[bool]
    topic_types: list[str]
    data_types: tuple[str, ...]

    def decode(self, topics: list[str], data: bytes, address: str) -> Event:
        values = iter(_decoder(self.data_types)(ContextFramesBytesIO(data)))
        topic_iter = iter(topics[1:])
        topic_types = iter(self.topic_types)
        args: dict[str, Any] = {}
        for name, is_indexed in zip(self.names, self.indexed, strict=True):
            if is_indexed:
                raw = bytes.fromhex(next(topic_iter)[2:])
                t = next(topic_types)
                # Dynamic indexed values (string, bytes, arrays, tuples) are stored as hashes.
                dynamic = t in ("string", "bytes") or t.endswith("]") or t.startswith("(")
                args[name] = raw if dynamic else _decoder((t,))(ContextFramesBytesIO(raw))[0]
            else:
                args[name] = next(values)
        return Event(self.name, args, address.lower())


class Compiled:
    """Bytecode and ABI of one Vyper source, with precompiled codecs."""

    def __init__(self, path: Path, bytecode: bytes, abi: list[dict[str, Any]]) -> None:
        self.path = path
        self.bytecode = bytecode
        self.abi = abi
        self.events: dict[bytes, _EventABI] = {}
        self.constructor_types: tuple[str, ...] = ()
        for item in abi:
            if item["type"] == "constructor":
                self.constructor_types = tuple(abi_type(i) for i in item["inputs"])
            elif item["type"] == "event":
                types = [abi_type(i) for i in item["inputs"]]
                indexed = [bool(i.get("indexed")) for i in item["inputs"]]
                topic0 = keccak(text=f"{item['name']}{_tuple(types)}")
                self.events[topic0] = _EventABI(
                    item["name"],
                    [i["name"] for i in item["inputs"]],
                    indexed,
                    [t for t, ix in zip(types, indexed, strict=True) if ix],
                    tuple(t for t, ix in zip(types, indexed, strict=True) if not ix),
                )


_compiled: dict[tuple[Path, float], Compiled] = {}


def compile_vyper(path: str | Path) -> Compiled:
    """Compile a Vyper source (absolute, or relative to the repository root), cached per process.

    Imports (`from contracts.math import wad`) resolve from the repository root. The cache key
    is the path and its modification time (an edited module imported by it is not noticed)."""
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle

    full = Path(path) if Path(path).is_absolute() else ROOT / path
    key = (full, full.stat().st_mtime)
    if key not in _compiled:
        bundle = FilesystemInputBundle([ROOT])
        out = compile_from_file_input(
            bundle.load_file(full), input_bundle=bundle, output_formats=["bytecode", "abi"]
        )
        _compiled[key] = Compiled(full, bytes.fromhex(out["bytecode"][2:]), out["abi"])
    return _compiled[key]


# ---------------------------------------------------------------------------------------------
# Chain and contracts
# ---------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Snapshot:
    """A point to return to: the revm journal checkpoint plus the block environment.

    revm consumes a checkpoint when it reverts to it; `Chain.revert` takes a new one at the same
    point (unless `reuse=False`), so a snapshot can be returned to many times."""

    checkpoint: JournalCheckpoint
    timestamp: int
    block_number: int


@dataclass
class _Last:
    gas_used: int = 0
    logs: list[Any] = field(default_factory=list)


class Chain:
    """An in-process revm EVM with funded accounts and a settable block time.

    `accounts` holds `n_accounts` addresses funded with `balance` wei; `deployer` (accounts[0]) is
    the default sender; `alice`, `bob`, `carol` are accounts[1:4]. `code_size_limit` replaces
    EIP-170's 24,576-byte limit on deployed code (None keeps it), as titanoboa does not
    enforce it."""

    def __init__(
        self,
        timestamp: int = START,
        block_number: int = 1,
        n_accounts: int = 10,
        balance: int = 10**24,
        spec: str = SPEC,
        code_size_limit: int | None = None,
    ) -> None:
        self._timestamp = timestamp
        self._block_number = block_number
        cfg = None if code_size_limit is None else CfgEnv(limit_contract_code_size=code_size_limit)
        self.evm = EVM(
            env=Env(cfg=cfg, block=BlockEnv(number=block_number, timestamp=timestamp)),
            spec_id=spec,
        )
        self.accounts = [self.new_account(f"account{i}", balance) for i in range(n_accounts)]
        self.deployer = self.accounts[0]
        self.alice, self.bob, self.carol = (self.accounts[1:4] + [self.deployer] * 3)[:3]
        self.last = _Last()
        self._open: list[Snapshot] = []  # valid snapshots, oldest first

    # -- accounts and time ---------------------------------------------------------------------

    def new_account(self, label: str, balance: int = 0) -> str:
        """A deterministic address derived from `label`, funded with `balance` wei."""
        address = "0x" + keccak(text=f"kappa:{label}")[12:].hex()
        if balance:
            self.evm.set_balance(address, balance)
        return address

    def balance(self, address: str) -> int:
        return int(self.evm.get_balance(address))

    @property
    def timestamp(self) -> int:
        return self._timestamp

    @property
    def block_number(self) -> int:
        return self._block_number

    def _set_block(self, timestamp: int, block_number: int) -> None:
        self._timestamp, self._block_number = timestamp, block_number
        self.evm.set_block_env(BlockEnv(number=block_number, timestamp=timestamp))

    def time_travel(
        self, seconds: int = 0, blocks: int | None = None, block_delta: int = 12
    ) -> None:
        """Move block.timestamp by `seconds` and block.number by `blocks` (default seconds // 12,
        like titanoboa)."""
        if blocks is None:
            blocks = seconds // block_delta
        self._set_block(self._timestamp + seconds, self._block_number + blocks)

    def set_timestamp(self, timestamp: int) -> None:
        self._set_block(timestamp, self._block_number)

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Mark the current state and block time to return to with `revert`."""
        snap = Snapshot(self.evm.snapshot(), self._timestamp, self._block_number)
        self._open.append(snap)
        return snap

    def revert(self, snap: Snapshot, reuse: bool = True) -> None:
        """Return the state (and block time) to `snap`; snapshots taken after it become invalid.

        With `reuse` (the default), `snap` stays valid for more reverts. Every valid snapshot
        holds one revm journal level open, and revm counts those towards the 1024 call-depth
        limit: revert with `reuse=False` (or use `anchor`) when done with a snapshot."""
        if not any(s is snap for s in self._open):
            raise ValueError("snapshot no longer valid (reverted past, or committed)")
        # Close the newer checkpoints first: revm lowers the journal depth by one per revert.
        while self._open[-1] is not snap:
            self.evm.revert(self._open.pop().checkpoint)
        self.evm.revert(self._open.pop().checkpoint)
        if reuse:
            snap.checkpoint = self.evm.snapshot()
            self._open.append(snap)
        self._set_block(snap.timestamp, snap.block_number)

    @contextmanager
    def anchor(self) -> Iterator[None]:
        """Run the block, then undo every state change and time move it made."""
        snap = self.snapshot()
        try:
            yield
        finally:
            self.revert(snap, reuse=False)

    def commit(self) -> None:
        """End the running revm transaction (warm slots reset); every snapshot becomes invalid."""
        self.evm.commit()
        self._open.clear()

    # -- reverts -------------------------------------------------------------------------------

    @contextmanager
    def reverts(self, reason: str | None = None) -> Iterator[None]:
        """Expect the block to revert, with exactly `reason` when it is given."""
        try:
            yield
        except Reverted as e:
            if reason is not None and e.reason != reason:
                raise AssertionError(f"expected revert {reason!r}, got {e.reason!r}") from e
        else:
            raise AssertionError(f"expected revert {reason!r}, but the call succeeded")

    # -- execution -----------------------------------------------------------------------------

    @property
    def gas_used(self) -> int:
        """Gas of the last call or deployment (revm's figure, see the module notes)."""
        return self.last.gas_used

    def _fail(self, err: RuntimeError) -> Exception:
        text = str(err)
        m = _REVERT.search(text)
        if m:
            data = bytes.fromhex(m.group(2))
            self.last = _Last(int(m.group(1)))
            return Reverted(decode_revert(data), data, int(m.group(1)))
        m = _HALT.search(text)
        if m:
            self.last = _Last(int(m.group(2)))
            return Halted(m.group(1), int(m.group(2)))
        return err

    def call(
        self,
        to: str,
        data: bytes,
        sender: str | None = None,
        value: int = 0,
        gas: int | None = None,
        static: bool = False,
    ) -> bytes:
        """A raw message call; state changes persist unless `static` (then the call is undone)."""
        evm = self.evm
        caller = sender or self.deployer
        if static:
            snap = evm.snapshot()
            try:
                out = evm.message_call(caller, to, data, value, gas, None, True)
            except RuntimeError as e:
                raise self._fail(e) from None
            finally:
                evm.revert(snap)
        else:
            try:
                out = evm.message_call(caller, to, data, value, gas)
            except RuntimeError as e:
                raise self._fail(e) from None
        result = evm.result
        self.last = _Last(result.gas_used, result.logs) if result is not None else _Last()
        return bytes(out)

    def deploy(
        self, path: str | Path, *args: Any, sender: str | None = None, value: int = 0
    ) -> Contract:
        """Compile (cached) and deploy a Vyper source; constructor arguments in ABI order."""
        compiled = compile_vyper(path)
        initcode = compiled.bytecode + _encoder(compiled.constructor_types)(args)
        try:
            address = self.evm.deploy(sender or self.deployer, initcode, value or None)
        except RuntimeError as e:
            raise self._fail(e) from None
        result = self.evm.result
        self.last = _Last(result.gas_used, result.logs) if result is not None else _Last()
        return Contract(self, compiled, address.lower())

    def at(self, path: str | Path, address: str) -> Contract:
        """A handle on a contract already deployed at `address` with the ABI of `path`."""
        return Contract(self, compile_vyper(path), address.lower())

    def decode_logs(self, compiled: Compiled, address: str | None = None) -> list[Event]:
        """Decode the last call's logs with `compiled`'s ABI (only those from `address` if given);
        logs whose topic the ABI does not know are skipped."""
        out = []
        for log in self.last.logs:
            if address is not None and log.address.lower() != address:
                continue
            topics = log.topics
            event = compiled.events.get(bytes.fromhex(topics[0][2:])) if topics else None
            if event is not None:
                out.append(event.decode(topics, log.data[1], log.address))
        return out

    def decode_logs_of(self, *contracts: Contract) -> list[Event]:
        """The last call's logs emitted by any of `contracts`, each decoded by its emitter's
        ABI, in the order they were emitted."""
        abis = {c.address.lower(): c.compiled for c in contracts}
        out = []
        for log in self.last.logs:
            compiled = abis.get(log.address.lower())
            topics = log.topics
            if compiled is None or not topics:
                continue
            event = compiled.events.get(bytes.fromhex(topics[0][2:]))
            if event is not None:
                out.append(event.decode(topics, log.data[1], log.address))
        return out


class ContractFunction:
    """One ABI function (or a set of overloads, told apart by argument count)."""

    def __init__(self, contract: Contract, name: str) -> None:
        self.contract = contract
        self.name = name
        # argument count -> (selector, input types, output types, n outputs, static)
        self.overloads: dict[int, tuple[bytes, tuple[str, ...], tuple[str, ...], int, bool]] = {}

    def add(self, item: dict[str, Any]) -> None:
        ins = tuple(abi_type(i) for i in item["inputs"])
        outs = tuple(abi_type(o) for o in item["outputs"])
        selector = keccak(text=f"{self.name}{_tuple(ins)}")[:4]
        static = item["stateMutability"] in ("view", "pure")
        self.overloads[len(ins)] = (selector, ins, outs, len(outs), static)

    def calldata(self, *args: Any) -> bytes:
        selector, ins, _, _, _ = self._pick(args)
        return selector + _encoder(ins)(args)

    def _pick(
        self, args: tuple[Any, ...]
    ) -> tuple[bytes, tuple[str, ...], tuple[str, ...], int, bool]:
        try:
            return self.overloads[len(args)]
        except KeyError:
            counts = sorted(self.overloads)
            raise TypeError(f"{self.name}() takes {counts} arguments, got {len(args)}") from None

    def __call__(
        self, *args: Any, sender: str | None = None, value: int = 0, gas: int | None = None
    ) -> Any:
        selector, ins, outs, n_out, static = self._pick(args)
        c = self.contract
        raw = c.chain.call(c.address, selector + _encoder(ins)(args), sender, value, gas, static)
        if n_out == 0:
            return None
        decoded = _return_decoder(outs)(raw)
        return decoded[0] if n_out == 1 else decoded


class Contract:
    """A deployed contract: each ABI function is an attribute, `c.fn(*args, sender=..., value=...)`;
    public state variables are getters like any view."""

    def __init__(self, chain: Chain, compiled: Compiled, address: str) -> None:
        self.chain = chain
        self.compiled = compiled
        self.address = address
        self._functions: dict[str, ContractFunction] = {}
        for item in compiled.abi:
            if item["type"] == "function":
                fn = self._functions.setdefault(item["name"], ContractFunction(self, item["name"]))
                fn.add(item)

    def __getattr__(self, name: str) -> ContractFunction:
        try:
            return self.__dict__["_functions"][name]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(f"{self.compiled.path.name} has no function {name!r}") from None

    def get_logs(self) -> list[Event]:
        """Events this contract emitted during the last call, decoded by its ABI."""
        return self.chain.decode_logs(self.compiled, self.address)

    def __repr__(self) -> str:
        return f"<{self.compiled.path.name} at {self.address}>"
