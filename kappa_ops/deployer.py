"""Execute a deployment plan with ape and record it in
`deployments/<ecosystem>-<network>-<chain-id>.json`.

The pure part (what to deploy, what to wire, which parameters the config sets) is
`kappa_ops.plan`; this module reads the chain (code at recorded addresses, wiring checks,
parameters), sends transactions from one account and writes the record after every
transaction, deployments and wiring calls alike (hash, block), so an interrupted run resumes
where it stopped and a one-shot call that was not sent is sent on the resume. A recorded contract
counts as present only when the code at its address starts with the project's runtime bytecode
for that contract type (Vyper appends immutables after it), so a fresh local node that reuses the
same addresses for other contracts is never mistaken for a deployment.

Modes (`deploy(..., mode=...)`):
- "deploy": deploy what is missing, wire, set the parameters of contracts deployed now; drift of
  kept contracts from the config is reported (a warning naming `--check`/`--apply`).
- "check": read only: what differs between the deployment and the config, with the calls that
  would reconcile it ("redeploy <name>" where no setter exists).
- "apply": "deploy", then send those calls.
- "dry-run": the whole of "deploy" simulated: on a local node inside a snapshot that is reverted,
  on a public network on a local anvil fork of it (ape-foundry's `<network>-fork`, started on a
  free port) with the deployer impersonated; per-step gas and the total cost at the current fee.

Every configured external address (tokens, price feeds, sequencer feed) is checked before
anything is sent: code present and the interface answering (decimals(), latestRoundData()). So
is every role a kept contract sets once (the engine's order and perp books, `Call.only_if`): a
run that would need to replace one stops with one line before it deploys or sends anything.
Progress goes through ape's logger (levels, `-v`), or through `log` when the caller gives one.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from kappa_ops.config import ROOT, WAD, DeployConfig, config_path, load_config
from kappa_ops.plan import (
    ZERO_ADDRESS,
    Call,
    Check,
    Deploy,
    Fix,
    Network,
    Now,
    Plan,
    Ref,
    Setting,
    describe,
    make_plan,
    refs,
    settings,
    source_fixes,
)
from keeper.perp import PerpParams

DEPLOYMENTS_DIR = ROOT / "deployments"
MODES = ("deploy", "check", "apply", "dry-run")
SEL_DECIMALS = "0x313ce567"
SEL_LATEST_ROUND = "0xfeaf968c"


class DeployError(RuntimeError):
    """A deployment that could not proceed (one-line message)."""


@dataclass(frozen=True)
class Drift:
    """One difference between the chain and the config, and the call that removes it."""

    key: str
    chain: str
    config: str
    fix: Fix


@dataclass
class Deployment:
    """The result: every contract of the plan as an ape instance, and what this run did."""

    chain_id: int
    network: str
    deployer: Any  # ape AccountAPI
    contracts: dict[str, Any]
    plan: Plan
    record_path: Path
    deployed: list[str] = field(default_factory=list)
    calls_sent: list[str] = field(default_factory=list)
    gas: dict[str, int] = field(default_factory=dict)  # gas per step (deploy or call), this run
    drift: list[Drift] = field(default_factory=list)  # what still differs from the config
    fixes_sent: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    gas_price: int = 0  # wei per gas used for the cost estimate (dry run)

    def __getitem__(self, name: str) -> Any:
        return self.contracts[name]

    def address(self, name: str) -> str:
        return str(self.contracts[name].address)

    @property
    def total_gas(self) -> int:
        return sum(self.gas.values())


# ---------------------------------------------------------------------------------------------
# Network, account, records


def current_network() -> Network:
    """The connected ape network as the plan sees it (a fork counts as its upstream)."""
    from ape import networks

    net = networks.provider.network
    name = net.name.removesuffix("-fork")
    return Network(ecosystem=net.ecosystem.name, name=name, is_local=bool(net.is_local))


def provider_label() -> str:
    from ape import networks

    p = networks.provider
    return f"{p.network.ecosystem.name}:{p.network.name}:{p.name}"


def _default_log(line: str) -> None:
    """ape's logger: "warning: ..." lines at WARNING, the rest at INFO (`-v` selects)."""
    from ape.logging import logger

    if line.startswith("warning: "):
        logger.warning(line.removeprefix("warning: "))
    else:
        logger.info(line)


def passphrase_variable(alias: str) -> str:
    return f"APE_ACCOUNTS_{alias}_PASSPHRASE"


def resolve_account(
    config: DeployConfig,
    network: Network,
    account: Any = None,
    yes: bool = False,
    sign: bool = True,
) -> Any:
    """The signing account: `account` (ape's `--account`) if given, else a test account on
    local networks, else the keystore alias of the config; a keystore account is set to sign
    without a prompt when its passphrase is in APE_ACCOUNTS_<alias>_PASSPHRASE or with `yes`
    (then the passphrase is asked once). With `sign=False` (a read-only check) nothing is
    unlocked."""
    from ape import accounts

    if account is None:
        spec = config.deployer
        if network.is_local and spec.test_account is not None:
            return accounts.test_accounts[spec.test_account]
        if spec.alias is None:
            raise DeployError(
                f"{config.source}: deployer.alias is needed on {network.label} (or pass --account)"
            )
        try:
            account = accounts.load(spec.alias)
        except Exception:
            raise DeployError(
                f"no ape account {spec.alias!r}: import one with `ape accounts import {spec.alias}`"
            ) from None
    if sign and hasattr(account, "set_autosign") and hasattr(account, "keyfile_path"):
        _autosign(account, yes)
    return account


def _autosign(account: Any, yes: bool) -> None:
    alias = str(account.alias)
    variable = passphrase_variable(alias)
    passphrase = os.environ.get(variable) or None
    if passphrase is None and not yes:
        if not sys.stdin or not sys.stdin.isatty():
            raise DeployError(
                f"account {alias!r} would prompt to sign but there is no terminal: set "
                f"{variable} (or pass --yes in a terminal)"
            )
        return  # interactive: ape asks before each transaction
    if passphrase is None and (not sys.stdin or not sys.stdin.isatty()):
        raise DeployError(f"--yes needs the passphrase of {alias!r}: set {variable}")
    try:
        account.set_autosign(True, passphrase=passphrase)
    except Exception as exc:
        what = f"the passphrase in {variable}" if passphrase else "the passphrase"
        raise DeployError(f"cannot unlock account {alias!r} with {what}: {_short(exc)}") from None


def record_path(network: Network, chain_id: int, directory: Path = DEPLOYMENTS_DIR) -> Path:
    """`<directory>/<ecosystem>-<network>-<chain-id>.json`: keyed by the network's name and
    the chain's id, so two local networks (same chain id) or a local node started with a
    testnet's chain id never share a record."""
    return directory / f"{network.ecosystem}-{network.name}-{chain_id}.json"


def load_record(path: Path) -> dict[str, Any]:
    """A record file: {"contracts": {...}, "calls": [...]} (empty if none)."""
    if not path.is_file():
        return {"contracts": {}, "calls": []}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise DeployError(f"{path}: not valid JSON; fix or remove it") from None
    contracts = data.get("contracts", {}) if isinstance(data, dict) else None
    calls = data.get("calls", []) if isinstance(data, dict) else None
    if not isinstance(contracts, dict) or not isinstance(calls, list):
        raise DeployError(f"{path}: expected an object with 'contracts' and 'calls'")
    return {"contracts": contracts, "calls": calls}


def _write_record(path: Path, chain_id: int, network: str, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"chain_id": chain_id, "network": network, **record}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def _container(project: Any, contract: str) -> Any:
    try:
        return getattr(project, contract)
    except AttributeError as exc:
        raise DeployError(
            f"contract type {contract} is not in the ape project ({_short(exc)})"
        ) from None


def _bytecode(code: Any) -> bytes:
    raw = getattr(code, "bytecode", None) or ""
    return bytes.fromhex(raw.removeprefix("0x"))


# Vyper appends immutables (32-byte words) after the runtime code; the deployed code is the
# runtime as embedded in the initcode plus those words.
MAX_IMMUTABLE_BYTES = 64 * 32


def _is_present(provider: Any, container: Any, address: str) -> bool:
    """Whether the code at `address` is this contract type's (immutables aside)."""
    code = bytes(provider.get_code(address))
    if not code:
        return False
    runtime = _bytecode(container.contract_type.runtime_bytecode)
    if runtime and code.startswith(runtime):
        return True
    initcode = _bytecode(container.contract_type.deployment_bytecode)
    head = code[: max(len(code) - MAX_IMMUTABLE_BYTES, len(code) // 2)]
    return bool(initcode) and head in initcode


def _short(exc: BaseException, limit: int = 240) -> str:
    """One line of an exception: its first line, hex dumps cut."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------------------------
# External addresses


def _eth_call(provider: Any, address: str, data: str) -> bytes | None:
    try:
        out = provider.web3.eth.call({"to": address, "data": data})
    except Exception:
        return None
    return bytes(out)


def check_addresses(config: DeployConfig, provider: Any, label: str) -> list[str]:
    """One line per configured external address that has no code or does not answer its
    interface (tokens: decimals(); feeds: decimals() and a positive latestRoundData();
    sequencer feed: latestRoundData() with answer 0 or 1)."""
    errors: list[str] = []
    items: list[tuple[str, str, str]] = []  # (key, address, kind)
    if config.tokens is not None:
        items += [
            ("tokens.cash", config.tokens.cash, "token"),
            ("tokens.underlying", config.tokens.underlying, "token"),
        ]
    for i, s in enumerate(config.oracle.sources):
        items.append((f"oracle.sources[{i}].feed", s.feed, "feed"))
    if config.oracle.sequencer_feed:
        items.append(("oracle.sequencer_feed", config.oracle.sequencer_feed, "sequencer"))
    for i, feeder in enumerate(config.feeders):
        del i, feeder  # feeders are accounts: nothing to check
    for key, address, kind in items:
        if not bytes(provider.get_code(address)):
            errors.append(f"{key} {address}: no code on {label}")
            continue
        if kind in ("token", "feed"):
            out = _eth_call(provider, address, SEL_DECIMALS)
            if out is None or len(out) < 32 or int.from_bytes(out[:32], "big") > 36:
                errors.append(f"{key} {address}: decimals() does not answer")
                continue
        if kind in ("feed", "sequencer"):
            out = _eth_call(provider, address, SEL_LATEST_ROUND)
            if out is None or len(out) < 160:
                errors.append(f"{key} {address}: latestRoundData() does not answer")
                continue
            answer = int.from_bytes(out[32:64], "big", signed=True)
            if kind == "feed" and answer <= 0:
                errors.append(f"{key} {address}: latestRoundData() answers {answer}, not a price")
            if kind == "sequencer" and answer not in (0, 1):
                errors.append(f"{key} {address}: answers {answer}, not a sequencer status (0/1)")
    return errors


# ---------------------------------------------------------------------------------------------
# Execution


def _resolve(value: Any, addresses: dict[str, str], now: int) -> Any:
    if isinstance(value, Ref):
        if value.name not in addresses:
            raise DeployError(f"{value.name} has no address yet (plan order)")
        return addresses[value.name]
    if isinstance(value, Now):
        return now + value.offset
    if isinstance(value, list):
        return [_resolve(v, addresses, now) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, addresses, now) for v in value)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


def _normal(value: Any) -> Any:
    """A view's answer as plain ints, bools, lowercase strings and tuples."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return value.lower()
    if hasattr(value, "values") and hasattr(value, "__dataclass_fields__"):
        return tuple(_normal(v) for v in value.values())
    if isinstance(value, list | tuple) or hasattr(value, "__iter__"):
        return tuple(_normal(v) for v in value)
    return str(value).lower()


def _holds(check: Check, target: Any, addresses: dict[str, str]) -> bool:
    got = getattr(target, check.view)(*_resolve(check.args, addresses, 0))
    if check.op == "nonzero":
        return bool(got)
    return _same(got, _resolve(check.expect, addresses, 0))


def _check_holds(call: Call, contracts: dict[str, Any], addresses: dict[str, str]) -> bool:
    assert call.check is not None
    return _holds(call.check, contracts[call.check_target], addresses)


def _blocked(
    plan: Plan, contracts: dict[str, Any], addresses: dict[str, str], record: Path
) -> list[str]:
    """One line per wiring call that can no longer succeed: its `only_if` fails on a kept
    target (a role the contract sets once is set) and its check does not hold, or refers to a
    contract this run would deploy (which the target can no longer take)."""
    out: list[str] = []
    for call in plan.calls:
        guard, check = call.only_if, call.check
        if guard is None or call.target not in contracts:
            continue
        target = contracts[call.target]
        if _holds(guard, target, addresses):
            continue
        wanted = (
            [n for n in refs((check.args, check.expect)) if n not in addresses] if check else []
        )
        if (
            check is not None
            and not wanted
            and call.check_target in contracts
            and _holds(check, contracts[call.check_target], addresses)
        ):
            continue
        current = getattr(target, guard.view)(*_resolve(guard.args, addresses, 0))
        new = f"a new {wanted[0]}" if wanted else describe(check.expect if check else call.args)
        out.append(
            f"{call.label}: {call.target} {target.address} already has {guard.view}() = "
            f"{current}, which it sets once, so it cannot take {new}; restore that contract's "
            f"entry in {record}, or remove {call.target}'s to redeploy it and what is built on it"
        )
    return out


def _render(value: Any, unit: str) -> str:
    if unit == "perp" and isinstance(value, int):
        p = PerpParams.unpack(value)
        return (
            f"band {_render(p.band, 'wad')}, half_life {p.half_life}, "
            f"convergence_hours {p.convergence_hours}, max_rate {_render(p.max_rate, 'wad')}"
        )
    if unit == "wad" and isinstance(value, int):
        if value >= 2**255:
            return "unlimited"
        f = Fraction(value, WAD)
        return str(f.numerator) if f.denominator == 1 else f"{float(f):.10g}"
    return str(value)


def _once_key(call: Call, addresses: dict[str, str]) -> str:
    return f"{call.label}@{addresses.get(call.target, '?').lower()}"


class _Run:
    """One execution: the connected chain, the account and the record being written."""

    def __init__(
        self,
        config: DeployConfig,
        network: Network,
        account: Any,
        path: Path,
        log: Callable[[str], None],
        simulate: bool,
    ) -> None:
        from ape import chain, networks, project

        self.config, self.network, self.account, self.path, self.log = (
            config,
            network,
            account,
            path,
            log,
        )
        self.chain, self.provider, self.project = chain, networks.provider, project
        self.chain_id = int(chain.chain_id)
        self.simulate = simulate
        self.record = load_record(path)
        legacy = path.parent / f"{self.chain_id}.json"
        if not path.is_file() and legacy.is_file() and not simulate:
            # Records used to be keyed by chain id alone: adopt one only if it names this network.
            try:
                named = json.loads(legacy.read_text()).get("network")
            except (json.JSONDecodeError, AttributeError):
                named = None
            if named == network.label:
                self.record = load_record(legacy)
                self.record.setdefault("calls", [])
                log(f"adopting the old record {legacy} as {path}")

    def plan(self) -> tuple[Plan, dict[str, str]]:
        entries = self.record["contracts"]
        draft = make_plan(self.config, self.network, str(self.account.address))
        present = []
        for d in draft.deploys:
            entry = entries.get(d.name)
            if not isinstance(entry, dict) or entry.get("contract") != d.contract:
                continue
            if _is_present(self.provider, _container(self.project, d.contract), entry["address"]):
                present.append(d.name)
        recorded = {n: e["address"] for n, e in entries.items() if isinstance(e, dict)}
        return make_plan(
            self.config, self.network, str(self.account.address), recorded, present
        ), recorded

    def save(self) -> None:
        _write_record(self.path, self.chain_id, self.network.label, self.record)

    def _gas_of(self, txn_hash: Any) -> tuple[int, int]:
        receipt = self.chain.get_receipt(txn_hash)
        return int(receipt.gas_used), int(receipt.block_number)

    def deploy_one(self, d: Deploy, addresses: dict[str, str], result: Deployment) -> None:
        container = _container(self.project, d.contract)
        args = _resolve(d.args, addresses, int(self.chain.blocks.head.timestamp))
        try:
            instance = self.account.deploy(container, *args)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise DeployError(f"deploying {d.name} ({d.contract}) failed: {_why(exc)}") from None
        addresses[d.name] = str(instance.address)
        result.contracts[d.name] = instance
        result.deployed.append(d.name)
        creation = instance.creation_metadata
        gas, block = self._gas_of(creation.txn_hash) if creation else (0, 0)
        result.gas[d.name] = gas
        self.record["contracts"][d.name] = {
            "address": str(instance.address),
            "contract": d.contract,
            "args": _jsonable(_resolve(d.args, addresses, 0)),
            "tx": str(creation.txn_hash) if creation else None,
            "block": block,
            "gas": gas,
        }
        self.save()
        self.log(f"deployed {d.name:<15} {d.contract:<20} {instance.address}  gas {gas:,}")

    def send(
        self,
        label: str,
        target: str,
        method: str,
        args: tuple[Any, ...],
        result: Deployment,
        key: str | None = None,
    ) -> None:
        contract = result.contracts[target]
        try:
            receipt = getattr(contract, method)(*args, sender=self.account)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise DeployError(f"{label}: {target}.{method} failed: {_why(exc)}") from None
        gas, block = int(receipt.gas_used), int(receipt.block_number)
        step = f"{target}.{method} ({label})"
        result.gas[step] = result.gas.get(step, 0) + gas
        self.record["calls"].append(
            {
                "label": label,
                "key": key,
                "target": target,
                "address": str(contract.address),
                "method": method,
                "args": _jsonable(list(args)),
                "tx": str(receipt.txn_hash),
                "block": block,
                "gas": gas,
            }
        )
        self.save()
        self.log(f"sent     {target}.{method} ({label})  gas {gas:,}")

    def once_done(self, key: str) -> bool:
        return any(c.get("key") == key for c in self.record["calls"] if isinstance(c, dict))


def _why(exc: BaseException) -> str:
    import click

    if isinstance(exc, click.exceptions.Abort | EOFError):
        return "signing was not confirmed (no answer to ape's prompt: set the passphrase variable)"
    return _short(exc)


def drift(result: Deployment, config: DeployConfig) -> list[Drift]:
    """What differs between the deployed contracts and `config`."""
    out: list[Drift] = []
    contracts = result.contracts
    addresses = {n: str(c.address) for n, c in contracts.items()}
    before: list[Drift] = []
    after: list[Drift] = []
    if "oracle" in contracts:
        oracle = contracts["oracle"]
        actual = []
        for i in range(int(oracle.source_count())):
            s = oracle.source(i)
            actual.append((str(s.feed), int(s.heartbeat)))
        if config.mocks is None:
            wanted = [(s.feed, s.heartbeat) for s in config.oracle.sources]
        else:
            wanted = [
                (addresses[f"feed_{x}"], config.oracle.heartbeat)
                for x in config.mocks.feed_decimals
                if f"feed_{x}" in addresses
            ]
        adds, removes = source_fixes(wanted, actual)
        before = [Drift(what, "", "", fix) for what, fix in adds]
        after = [Drift(what, "", "", fix) for what, fix in removes]
    out += before
    for s in settings(config):
        if s.target not in contracts:
            continue
        view = getattr(contracts[s.target], s.view, None)
        if view is None:  # a parameter this contract version does not have
            result_notes = f"{s.key}: {s.target} has no {s.view}() view; not compared"
            if result_notes not in result.notes:
                result.notes.append(result_notes)
            continue
        if s.requires is not None and not getattr(contracts[s.target], s.requires)():
            continue  # nothing to compare yet (the wiring call that sets it is due)
        got: Any = view(*s.args)
        got = _normal(got)
        for i in s.pick:
            got = got[i]
        want = _normal(_resolve(s.expect, addresses, 0))
        if got != want:
            out.append(Drift(s.key, _render(got, s.unit), _render(want, s.unit), s.fix))
    return out + after


def _fix_calls(drifts: list[Drift]) -> list[Fix]:
    seen: list[Fix] = []
    for d in drifts:
        if d.fix not in seen:
            seen.append(d.fix)
    return seen


def _report_drift(drifts: list[Drift], log: Callable[[str], None]) -> None:
    for d in drifts:
        what = d.key if not d.chain else f"{d.key}: chain {d.chain}, config {d.config}"
        log(f"differs  {what}")
    for fix in _fix_calls(drifts):
        log(f"  fix    {fix.render()}")


def _execute(
    run: _Run, mode: str, result: Deployment, plan: Plan, recorded: dict[str, str]
) -> None:
    """Deploy what the plan lacks, wire, reconcile (see the module)."""
    addresses: dict[str, str] = {}
    for d in plan.deploys:
        if d.keep:
            container = _container(run.project, d.contract)
            addresses[d.name] = recorded[d.name]
            result.contracts[d.name] = container.at(recorded[d.name])
    blocked = _blocked(plan, result.contracts, addresses, run.path)
    if blocked:
        if mode != "check":
            more = f" (and {len(blocked) - 1} more)" if len(blocked) > 1 else ""
            raise DeployError(blocked[0] + more)
        for line in blocked:
            run.log(f"blocked  {line}")
    for d in plan.deploys:
        if d.keep:
            continue
        if mode == "check":
            run.log(f"missing  {d.name} ({d.contract}): would deploy")
            continue
        run.deploy_one(d, addresses, result)

    for call in plan.calls:
        if call.once:
            # A target deployed in this run is new even at a recorded address (a fresh local
            # chain reuses the deterministic addresses of the last one): its once-calls are due.
            if call.target not in result.contracts or call.target in result.deployed:
                due = True
            else:
                due = not run.once_done(_once_key(call, addresses))
        elif call.check is not None:
            # A check on a contract not deployed, or naming one (--check), cannot hold yet.
            missing = (
                call.target not in result.contracts
                or call.check_target not in result.contracts
                or any(n not in addresses for n in refs((call.check.args, call.check.expect)))
            )
            due = True if missing else not _check_holds(call, result.contracts, addresses)
        else:
            due = True
        if not due:
            continue
        if mode == "check":
            run.log(f"missing  {call.label}: {call.target}.{call.method}{describe(call.args)}")
            continue
        args = _resolve(call.args, addresses, int(run.chain.blocks.head.timestamp))
        key = _once_key(call, addresses) if call.once else None
        run.send(call.label, call.target, call.method, args, result, key)
        result.calls_sent.append(call.label)

    drifts = drift(result, run.config)
    fresh = set(result.deployed)
    fixes = _fix_calls(drifts)
    for fix in fixes:
        # Parameters of contracts deployed now (set_caps, max positions) are part of deploying;
        # those of kept contracts change a live deployment: only with --apply.
        if fix.method is None or mode == "check":
            continue
        if fix.target in fresh or mode == "apply":
            args = _resolve(fix.args, addresses, 0)
            run.send(f"config {fix.target}.{fix.method}", fix.target, fix.method, args, result)
            result.fixes_sent.append(fix.render())
    result.drift = drift(result, run.config) if result.fixes_sent else drifts
    for note in result.notes:
        run.log(f"note: {note}")
    if result.drift:
        _report_drift(result.drift, run.log)
        if mode == "deploy":
            run.log(
                f"warning: {len(result.drift)} setting(s) differ from {run.config.source}: "
                "`--check` lists them, `--apply` sends the fixes"
            )
        redeploys = [f.target for f in _fix_calls(result.drift) if f.method is None]
        if redeploys and mode == "apply":
            run.log(
                "warning: no setter for "
                + ", ".join(sorted(set(redeploys)))
                + ": remove the entry from the record file to redeploy it"
            )


def deploy(
    config: DeployConfig,
    *,
    dry_run: bool = False,
    mode: str | None = None,
    records_dir: Path = DEPLOYMENTS_DIR,
    log: Callable[[str], None] | None = None,
    account: Any = None,
    yes: bool = False,
) -> Deployment:
    """Deploy and wire everything `config` describes on the connected network (see the
    module for `mode`; `dry_run=True` is mode "dry-run"). Kept contracts are not redeployed,
    satisfied wiring checks and recorded one-shot calls are not re-sent."""
    from ape import chain, networks

    mode = mode or ("dry-run" if dry_run else "deploy")
    if mode not in MODES:
        raise DeployError(f"unknown mode {mode!r}")
    log = log or _default_log
    network = current_network()
    provider = networks.provider
    label = provider_label()

    errors = check_addresses(config, provider, network.label)
    if errors:
        raise DeployError(errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
    chain_id = int(chain.chain_id)
    path = record_path(network, chain_id, records_dir)

    if mode == "dry-run":
        return _dry_run(config, network, label, path, log, account, yes)

    signer = resolve_account(config, network, account, yes, sign=mode != "check")
    run = _Run(config, network, signer, path, log, simulate=False)
    plan, recorded = run.plan()
    log(f"network {label} (chain id {chain_id}); deployer {signer.address}; record {path}")
    for note in plan.notes:
        log(f"note: {note}")
    if not network.is_local and mode != "check":
        balance = int(signer.balance)
        log(f"deployer balance {balance / 1e18:.6f} ETH")
        if balance == 0 and plan.to_deploy:
            raise DeployError(f"deployer {signer.address} has no ETH on {network.label}")
    result = Deployment(chain_id, label, signer, {}, plan, path)
    _execute(run, mode, result, plan, recorded)
    _summary(result, log)
    if mode == "check" and not result.drift and not plan.to_deploy:
        log("in sync: the deployment matches the config")
    if not network.is_local and result.deployed:
        next_steps(result, log)
    return result


@contextmanager
def _simulation(network: Network, label: str, log: Callable[[str], None]) -> Iterator[Any]:
    """A place to run the plan without touching `network`: a reverted snapshot on a local node,
    an anvil fork (free local port) of a public one."""
    from ape import chain, networks

    if network.is_local:
        snapshot = chain.snapshot()
        try:
            yield networks.provider
        finally:
            chain.restore(snapshot)
        return
    pinned = ROOT / "node_modules" / ".bin"
    if (pinned / "anvil").is_file():  # the pinned anvil (package.json), not another on PATH
        os.environ["PATH"] = f"{pinned}{os.pathsep}{os.environ.get('PATH', '')}"
    try:
        context = networks.fork(provider_name="foundry")
        provider = context.__enter__()
    except Exception as exc:
        raise DeployError(f"cannot fork {label} with anvil: {_short(exc)}") from None
    log(f"dry run on an anvil fork of {label} at {getattr(provider, 'uri', '?')}")
    try:
        yield provider
    finally:
        context.__exit__(None, None, None)


def _dry_run(
    config: DeployConfig,
    network: Network,
    label: str,
    path: Path,
    log: Callable[[str], None],
    account: Any,
    yes: bool,
) -> Deployment:
    from ape import accounts, networks

    upstream = networks.provider
    gas_price = _fee(upstream)
    # Who would sign: the configured account's address if it is known (impersonated on a
    # fork, nothing to unlock); else the node's first dev account.
    address: str | None = None
    if account is not None:
        address = str(account.address)
    elif network.is_local and config.deployer.test_account is not None:
        address = str(accounts.test_accounts[config.deployer.test_account].address)
    elif config.deployer.alias is not None and config.deployer.alias in list(accounts.aliases):
        address = str(accounts.load(config.deployer.alias).address)
    balance = int(upstream.get_balance(address)) if address else None
    with tempfile.TemporaryDirectory() as tmp, _simulation(network, label, log) as provider:
        record = Path(tmp) / path.name
        if path.is_file():
            record.write_text(path.read_text())
        if address is None:
            signer = accounts.test_accounts[0]
            log(
                f"no keystore account for {config.deployer.alias!r}: simulating as {signer.address}"
            )
        elif network.is_local and account is None:
            signer = accounts.test_accounts[config.deployer.test_account or 0]
        else:
            try:  # the deployer's own address, impersonated: nothing to unlock
                signer = accounts[address]
                provider.set_balance(str(signer.address), 10**24)
            except Exception:
                signer = accounts.test_accounts[0]
                log(f"cannot impersonate {address} here: simulating as {signer.address}")
        run = _Run(config, network, signer, record, log, simulate=True)
        plan, recorded = run.plan()
        log(f"dry run: network {label}; deployer {signer.address}; record {path} (not written)")
        for note in plan.notes:
            log(f"note: {note}")
        result = Deployment(
            int(provider.chain_id), label, signer, {}, plan, path, dry_run=True, gas_price=gas_price
        )
        _execute(run, "dry-run", result, plan, recorded)
        _summary(result, log)
        cost = result.total_gas * gas_price
        log(
            f"total gas {result.total_gas:,} over {len(result.gas)} transactions; at "
            f"{gas_price / 1e9:.4g} gwei: {cost / 1e18:.6f} ETH"
            + ("" if network.is_local else " (L2 execution only; an L1 data fee comes on top)")
        )
        if balance is not None and not network.is_local and balance < cost:
            log(f"warning: deployer balance {balance / 1e18:.6f} ETH is below the estimate")
        result.contracts = {}  # instances on a simulation that is gone
        return result


def _fee(provider: Any) -> int:
    """Wei per gas at the current fee: base fee plus priority fee, else the gas price."""
    try:
        return int(provider.base_fee) + int(provider.priority_fee)
    except Exception:
        try:
            return int(provider.gas_price)
        except Exception:
            return 0


def next_steps(result: Deployment, log: Callable[[str], None]) -> None:
    """What an operator does after a testnet deployment."""
    net = result.network.rsplit(":", 1)[0]
    vol, engine = result.address("vol_oracle"), result.address("engine")
    log("")
    log("next steps (docs/runbook-testnet.md):")
    log(f"  1. feed the vol oracle: VolOracle({vol}).update(expiry, atm, skew) from a feeder")
    log(f"  2. list series: MarginEngine({engine}).list_series(expiry, strike, is_call)")
    if "order_book" in result.contracts:
        book = result.address("order_book")
        log(f"     makers sign orders for OrderBook({book}) (the EIP-712 verifyingContract)")
    log(
        "  3. hand over roles: engine.set_role('risk_admin'|'guardian', ...), "
        "vol_oracle.add_feeder(<keeper>), transfer_ownership to a multisig"
    )
    log(
        "  4. run the keeper: silverback run keeper.runtime.bot:bot "
        f"--network {net}:node --account <alias>"
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53:
        return str(value)
    return value


def _summary(result: Deployment, log: Callable[[str], None]) -> None:
    rows = []
    for d in result.plan.deploys:
        if d.name in result.deployed:
            status = "simulated" if result.dry_run else "deployed"
        elif d.keep:
            status = "kept"
        else:
            status = "missing"
        address = "-"
        if d.name in result.contracts and not result.dry_run:
            address = str(result.contracts[d.name].address)
        gas = f"{result.gas[d.name]:,}" if d.name in result.gas else ""
        rows.append((d.name, d.contract, address, status, gas))
    for step, used in result.gas.items():
        if step not in result.plan.names:
            call, _, label = step.partition(" (")
            status = "simulated" if result.dry_run else "sent"
            rows.append((call, label.removesuffix(")")[:42], "", status, f"{used:,}"))
    header = ("name", "contract", "address", "status", "gas")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    log("")
    log("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    log("  ".join("-" * w for w in widths))
    for row in rows:
        log("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    log(
        f"{len(result.deployed)} deployed, "
        f"{sum(d.keep for d in result.plan.deploys)} kept, "
        f"{len(result.calls_sent)} wiring calls sent, {len(result.fixes_sent)} config fixes sent"
        + (" (dry run: nothing sent to the network)" if result.dry_run else "")
    )


def deploy_from_files(
    config_file: Path | None = None,
    *,
    dry_run: bool = False,
    mode: str | None = None,
    records_dir: Path = DEPLOYMENTS_DIR,
    log: Callable[[str], None] | None = None,
    account: Any = None,
    yes: bool = False,
) -> Deployment:
    """Load the connected network's config file (or `config_file`) and deploy."""
    network = current_network()
    path = config_file or config_path(network.ecosystem, network.name)
    return deploy(
        load_config(path),
        dry_run=dry_run,
        mode=mode,
        records_dir=records_dir,
        log=log,
        account=account,
        yes=yes,
    )


__all__ = [
    "DEPLOYMENTS_DIR",
    "ZERO_ADDRESS",
    "DeployError",
    "Deployment",
    "Drift",
    "Setting",
    "check_addresses",
    "current_network",
    "deploy",
    "deploy_from_files",
    "drift",
    "load_record",
    "record_path",
    "resolve_account",
]
