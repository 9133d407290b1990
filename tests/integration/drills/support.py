"""Shared start-up of the keeper fault drills: a seeded anvil state, nodes, bots, a TCP proxy,
Redis, the chain's truth and the drills' results file.

The demo market is deployed and seeded once per session (`seeded_state`: ape in a child
process, as tests/integration/test_keeper_bot.py does) and the node's state is dumped; every
drill starts its own anvil from that dump (`--load-state`), so a drill costs its own minutes
only. Everything a drill does to the chain afterwards goes through raw JSON-RPC from the test
process (`Node`): feed answers, mining modes, base fees, reorgs, margin views. The bots are
`silverback run` processes (`Bot`), their logs JSON lines.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

from kappa_ops.keeper_bot import log_lines
from keeper.runtime.localnet import anvil_command
from tests.integration.conftest import child_env

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "bench" / "results" / "keeper_drills.json"
NETWORK_FILE = ROOT / "deploy" / "networks" / "base-local.yaml"
FEED_SPREAD = 0.001  # kappa_ops.scenario.ScenarioSettings.feed_spread
BOT_SIGNERS = ("TEST::3", "TEST::5")  # the demo's bidder, and a second funded bidder
SIGNER_ADDRESSES = {
    "TEST::3": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "TEST::5": "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
}
DEPLOYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # test account 0: feeds, roles
WAD = 10**18


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


# -- the node ---------------------------------------------------------------------------------


class Node:
    """A drill's anvil, loaded from the seeded state, and raw JSON-RPC to it."""

    def __init__(self, state: Path, records: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.records = records
        self._log = log.open("wb")
        cmd = [*anvil_command(self.port), "--load-state", str(state)]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=self._log)
        wait_for(self._answers, 30, "anvil")
        record = json.loads(next(records.glob("base-local-*.json")).read_text())
        self.addresses = {k: str(v["address"]) for k, v in record["contracts"].items()}
        self.start_block = min(int(record["contracts"][n]["block"]) for n in ("engine",))

    def _answers(self) -> bool:
        try:
            return self.rpc("eth_chainId") is not None
        except OSError:
            return False

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        req = urllib.request.Request(self.url, body.encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.loads(resp.read())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def call(self, to: str, data: bytes, block: int | str = "latest") -> bytes:
        tag = hex(block) if isinstance(block, int) else block
        return bytes.fromhex(self.rpc("eth_call", [{"to": to, "data": "0x" + data.hex()}, tag])[2:])

    def view(self, name: str, sig: str, args: tuple[Any, ...], out: list[str], block: Any) -> Any:
        types = sig[sig.index("(") + 1 : -1]
        arg = encode(types.split(",") if types else [], list(args))
        return decode(out, self.call(self.addresses[name], selector(sig) + arg, block))

    def send(self, sender: str, to: str, data: bytes, gas: int = 500_000) -> str:
        return str(
            self.rpc(
                "eth_sendTransaction",
                [{"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(gas)}],
            )
        )

    def receipt(self, txn_hash: str) -> dict[str, Any] | None:
        return self.rpc("eth_getTransactionReceipt", [txn_hash])  # type: ignore[no-any-return]

    def mine(self) -> None:
        self.rpc("evm_mine")

    def interval_mining(self, seconds: int) -> None:
        """Blocks every `seconds` (0: only when asked; automine off)."""
        self.rpc("evm_setAutomine", [False])
        self.rpc("evm_setIntervalMining", [seconds])

    def move_feeds(self, spot: float) -> list[str]:
        """Every mock feed to `spot` (the demo's spread), sent from the deployer; returns the
        hashes (mined by the node's mining mode)."""
        moves = (1 - FEED_SPREAD, 1.0, 1 + FEED_SPREAD)
        hashes = []
        for dec, m in zip((8, 18, 6), moves, strict=True):
            data = selector("set_answer(int256)") + encode(["int256"], [round(spot * m * 10**dec)])
            hashes.append(self.send(DEPLOYER, self.addresses[f"feed_{dec}"], data))
        return hashes

    def margin(self, account: str, block: Any = "latest") -> tuple[int, int, int]:
        out = self.view(
            "engine", "margin(address)", (account,), ["int256", "int256", "int256"], block
        )
        return int(out[0]), int(out[1]), int(out[2])

    def auction_start(self, account: str, block: Any = "latest") -> int:
        return int(
            self.view("liquidator", "auction_start(address)", (account,), ["uint256"], block)[0]
        )

    def auctions_started(self, start: int, end: int | str = "latest") -> list[tuple[str, int]]:
        """(account, block) of every AuctionStarted log in [start, end]."""
        topic = "0x" + keccak(text="AuctionStarted(address,uint256,int256)").hex()
        logs = self.rpc(
            "eth_getLogs",
            [
                {
                    "fromBlock": hex(start),
                    "toBlock": hex(end) if isinstance(end, int) else end,
                    "address": self.addresses["liquidator"],
                    "topics": [topic],
                }
            ],
        )
        return [
            (to_checksum_address("0x" + x["topics"][1][-40:]), int(x["blockNumber"], 16))
            for x in logs
        ]

    def signer_transactions(self, signers: Iterable[str], start: int) -> list[dict[str, Any]]:
        """Every mined transaction from `signers` in blocks [start, head], with its status."""
        wanted = {s.lower() for s in signers}
        out = []
        for number in range(start, self.head() + 1):
            block = self.rpc("eth_getBlockByNumber", [hex(number), True])
            for tx in block["transactions"]:
                if tx["from"].lower() in wanted:
                    r = self.receipt(tx["hash"])
                    assert r is not None
                    out.append(
                        {
                            "from": tx["from"].lower(),
                            "nonce": int(tx["nonce"], 16),
                            "to": (tx["to"] or "").lower(),
                            "input": tx["input"][:10],
                            "status": int(r["status"], 16),
                            "block": number,
                            "hash": tx["hash"],
                            "fee": int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16),
                        }
                    )
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self._log.close()


def liquidatable(node: Node, accounts: Iterable[str], block: int) -> list[str]:
    """Accounts with H_MM < 0 and no open auction at `block` (the contract's own views)."""
    return [
        a for a in accounts if node.margin(a, block)[2] < 0 and node.auction_start(a, block) == 0
    ]


def all_auctioned(node: Node, accounts: Iterable[str], since: int) -> bool:
    """Every account had an auction started since block `since` (a bid that restores an
    account ends its auction, so an open auction is not the test)."""
    started = {a.lower() for a, _ in node.auctions_started(since)}
    return all(a.lower() in started for a in accounts)


def crash(node: Node, accounts: list[str], spots: Iterable[float], wait_blocks: int = 3) -> dict:
    """The feeds fall in steps (the node mines on its own interval): per step, the accounts
    that turned liquidatable in the step's block."""
    steps = []
    for spot in spots:
        hashes = node.move_feeds(spot)
        receipts = wait_for(
            lambda hs=hashes: all(node.receipt(h) for h in hs) and [node.receipt(h) for h in hs],
            60,
            "the feed updates",
        )
        assert all(int(r["status"], 16) == 1 for r in receipts)
        b = max(int(r["blockNumber"], 16) for r in receipts)
        steps.append({"spot": spot, "block": b, "newly": liquidatable(node, accounts, b)})
        wait_for(lambda b=b: node.head() >= b + wait_blocks, 60, "blocks after the step")
    return {"steps": steps}


def outcome(node: Node, turned: Iterable[str], since: int, signers: Iterable[str]) -> dict:
    """missed: accounts that turned liquidatable and never got an auction (none started and
    none open now); duplicates: reverted transactions of the bots plus auctions started twice
    for one account without an end in between (impossible on chain: counted as a guard)."""
    started = node.auctions_started(since)
    by_account: dict[str, int] = {}
    for account, _ in started:
        by_account[account.lower()] = by_account.get(account.lower(), 0) + 1
    missed = [a for a in turned if a.lower() not in by_account and node.auction_start(a) == 0]
    txs = node.signer_transactions(signers, since)
    reverted = [t for t in txs if t["status"] == 0]
    nonces = [(t["from"], t["nonce"]) for t in txs]
    return {
        "missed": missed,
        "reverted": reverted,
        "duplicates": len(reverted) + (len(nonces) - len(set(nonces))),
        "auctions": by_account,
        "transactions": txs,
    }


# -- the mirror against the chain -------------------------------------------------------------


def mirror_mismatches(node: Node, checkpoint: Path) -> tuple[int, list[Any]]:
    """The bot's checkpoint (its mirror) against the contracts' storage views at the
    checkpoint's block: (block, every difference)."""
    from keeper.series import pack_position

    data = json.loads(checkpoint.read_text())
    b = int(data["last_block"])
    out: list[Any] = []
    # The cash indices: the engine's view accrues them to the block's time, the mirror from
    # its last Accrued event by the same rule (keeper/interest.py).
    from keeper.runtime.mirror import Mirror

    now = int(node.rpc("eth_getBlockByNumber", [hex(b), False])["timestamp"], 16)
    pool = node.view("engine", "cash_pool()", (), ["uint256"] * 7, b)
    chain_indices = (int(pool[0]), int(pool[1]))
    mirror_indices = Mirror.from_checkpoint(data).indices_at(now)
    if chain_indices != mirror_indices:
        out.append(("indices", chain_indices, mirror_indices))
    for a in data["accounts"]:
        addr = a["address"]
        chain_view = [
            int(node.view("engine", "cash_shares(address)", (addr,), ["uint256"], b)[0]),
            int(node.view("engine", "cash_debt(address)", (addr,), ["uint256"], b)[0]),
            int(node.view("engine", "underlying_balance(address)", (addr,), ["uint256"], b)[0]),
            [
                int(w)
                for w in node.view(
                    "engine", "packed_positions(address)", (addr,), ["uint256[]"], b
                )[0]
            ],
            node.auction_start(addr, b),
        ]
        mirror_view = [
            int(a["shares"]),
            int(a["debt"]),
            int(a["underlying"]),
            [pack_position(s, q) for s, q in a["positions"]],
            int(a["auction_start"]),
        ]
        if chain_view != mirror_view:
            out.append((addr, chain_view, mirror_view))
    return b, out


# -- the seeded state -------------------------------------------------------------------------

SEED = """
import json, sys
from pathlib import Path
from keeper.runtime.localnet import connected, demo
port, records = int(sys.argv[1]), Path(sys.argv[2])
with connected(port) as provider:
    from ape import accounts
    d = demo(records, short=True, log=lambda line: None)
    second = accounts.test_accounts[5]
    d.fund(second.address, 20_000_000)  # the second bot's capital
    print("RESULT " + json.dumps({"accounts": list(d.accounts)}))
"""


@dataclass(frozen=True)
class Seeded:
    state: Path
    records: Path
    accounts: list[str]


def seed(workdir: Path) -> Seeded:
    """Deploy and seed the demo market on a fresh anvil, then dump the node's state."""
    e = child_env()
    assert shutil.which("anvil", path=e["PATH"]), "anvil missing: run `make setup` first"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    records = workdir / "deployments"
    log = (workdir / "seed-anvil.log").open("wb")
    anvil = subprocess.Popen(anvil_command(port), stdout=log, stderr=log)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", SEED, str(port), str(records)],
            cwd=ROOT,
            env=e,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        accounts = json.loads(line.removeprefix("RESULT "))["accounts"]
        body = {"jsonrpc": "2.0", "id": 1, "method": "anvil_dumpState", "params": []}
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            dump = json.loads(resp.read())["result"]
    finally:
        anvil.terminate()
        anvil.wait(timeout=30)
        log.close()
    # anvil_dumpState answers the gzipped JSON that `--load-state` reads, hex-encoded.
    state = workdir / "seeded.json"
    state.write_bytes(gzip.decompress(bytes.fromhex(dump.removeprefix("0x"))))
    return Seeded(state, records, accounts)


# -- bots -------------------------------------------------------------------------------------


def write_config(path: Path, checkpoint: Path, extra: str = "") -> Path:
    """A bot's settings: the local network's file with the drill's keeper keys. The local
    file's fixed ports (metrics, health) are switched off unless the drill sets its own, so
    that several bots can run side by side; no hedger, no vol feeder (the drills' market has
    no vol path)."""
    keys = {
        "checkpoint": str(checkpoint),
        "drift": "{every_blocks: 5, sample: 4}",
        "roles": "{hedger: false, vol_feeder: false}",
        "metrics_port": "null",
        "health": "null",
    }
    own = {line.split(":")[0].strip() for line in extra.splitlines() if line.startswith("  ")}
    lines = [f"  {k}: {v}\n" for k, v in keys.items() if k not in own]
    path.write_text(f"extends: {NETWORK_FILE}\nkeeper:\n" + "".join(lines) + extra)
    return path


RUNNER = "keeper.runtime.runner:KeeperRunner"


@dataclass
class Bot:
    """One `silverback run` (or `silverback worker`) process of the keeper bot."""

    name: str
    workdir: Path
    records: Path
    config: Path
    signer: str = BOT_SIGNERS[0]
    command: str = "run"
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}-{self.starts}.log"

    def start(self, rpc_port: int) -> Bot:
        self.starts += 1
        e = {
            **child_env(),
            "APE_FOUNDRY_HOST": f"http://127.0.0.1:{rpc_port}",
            "KAPPA_KEEPER_CONFIG": str(self.config),
            "KAPPA_RECORDS_DIR": str(self.records),
            **self.extra_env,
        }
        silverback = str(Path(sys.executable).parent / "silverback")
        if self.command == "run":
            cmd = [silverback, "run", "--runner", RUNNER, "keeper.runtime.bot:bot"]
        else:
            cmd = [silverback, "worker", "-w", "1", "keeper.runtime.bot:bot"]
        cmd += ["--network", "base:local:foundry"]
        if self.signer:
            cmd += ["--account", self.signer]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=e, stdout=out, stderr=subprocess.STDOUT)
        return self

    def lines(self, every: bool = True) -> list[dict[str, Any]]:
        """This bot's JSON lines (of every start, or of the current one)."""
        if not every:
            return log_lines(self.log)
        return [
            x
            for i in range(1, self.starts + 1)
            for x in log_lines(self.workdir / f"{self.name}-{i}.log")
        ]

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.is_file() else ""

    def events(self, name: str, every: bool = True) -> list[dict[str, Any]]:
        return [x for x in self.lines(every) if x.get("event") == name]

    def processed(self) -> int:
        """The last block of this start's `risk` lines (-1 before the first)."""
        risk = self.events("risk", every=False)
        return int(risk[-1]["block"]) if risk else -1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown handler, no checkpoint write."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


# -- a TCP proxy between a bot and its node ---------------------------------------------------


class Proxy:
    """Forwards 127.0.0.1:`port` to the node. `cut()` closes every connection and stops
    listening (connections are refused, as when a node or its load balancer goes away);
    `restore()` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._server: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            conns, self._conns = self._conns, []
        if server is not None:
            server.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._server is not server:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


# -- Redis ------------------------------------------------------------------------------------


class Redis:
    """A real redis-server on a free port, no persistence, stopped by `stop()`."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server missing: `make redis` installs it (apt)"
        self.port = free_port()
        self._log = (workdir / "redis.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=self._log,
            stderr=self._log,
        )
        wait_for(self._ping, 20, "redis-server")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self._log.close()


# -- results ----------------------------------------------------------------------------------


def record_result(drill: str, **fields: Any) -> None:
    """One drill's line in bench/results/keeper_drills.json (written by the drills run)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    drills = data.setdefault("drills", {})
    drills[drill] = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields}
    data["command"] = "make drills"
    data["about"] = (
        "Fault drills of the keeper bot on anvil (tests/integration/drills): missed = accounts "
        "that turned liquidatable without an auction, duplicates = reverted or repeated "
        "transactions of the bots, recovery_seconds = see each drill's `recovery`."
    )
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
