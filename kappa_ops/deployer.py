"""Execute a deployment plan with ape and record it in `deployments/<chain-id>.json`.

The pure part (what to deploy, what to wire) is `kappa_ops.plan`; this module reads the chain
(code at recorded addresses, wiring checks), sends transactions from one account and writes the
record after every deployment, so an interrupted run resumes where it stopped. A recorded
contract counts as present only when the code at its address starts with the project's runtime
bytecode for that contract type (Vyper appends immutables after it), so a fresh local node that
reuses the same addresses for other contracts is never mistaken for a deployment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kappa_ops.config import ROOT, DeployConfig, config_path, load_config
from kappa_ops.plan import Call, Deploy, Network, Now, Plan, Ref, describe, make_plan

DEPLOYMENTS_DIR = ROOT / "deployments"


class DeployError(RuntimeError):
    """A deployment that could not proceed (one-line message)."""


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
    gas: dict[str, int] = field(default_factory=dict)  # deployment gas per name, this run
    dry_run: bool = False

    def __getitem__(self, name: str) -> Any:
        return self.contracts[name]

    def address(self, name: str) -> str:
        return str(self.contracts[name].address)


# ---------------------------------------------------------------------------------------------
# Network, account, records


def current_network() -> Network:
    """The connected ape network as the plan sees it."""
    from ape import networks

    net = networks.provider.network
    return Network(ecosystem=net.ecosystem.name, name=net.name, is_local=bool(net.is_local))


def provider_label() -> str:
    from ape import networks

    p = networks.provider
    return f"{p.network.ecosystem.name}:{p.network.name}:{p.name}"


def resolve_account(config: DeployConfig, network: Network) -> Any:
    """The signing account: a test account on local networks, else the keystore alias."""
    from ape import accounts

    spec = config.deployer
    if network.is_local and spec.test_account is not None:
        return accounts.test_accounts[spec.test_account]
    if spec.alias is None:
        raise DeployError(f"{config.source}: deployer.alias is needed on {network.label}")
    try:
        return accounts.load(spec.alias)
    except Exception:
        raise DeployError(
            f"no ape account {spec.alias!r}: import one with `ape accounts import {spec.alias}`"
        ) from None


def record_path(chain_id: int, directory: Path = DEPLOYMENTS_DIR) -> Path:
    return directory / f"{chain_id}.json"


def load_record(path: Path) -> dict[str, dict[str, Any]]:
    """The `contracts` mapping of a record file (empty if none)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise DeployError(f"{path}: not valid JSON; fix or remove it") from None
    contracts = data.get("contracts", {}) if isinstance(data, dict) else None
    if not isinstance(contracts, dict):
        raise DeployError(f"{path}: expected an object with a 'contracts' mapping")
    return contracts


def _write_record(path: Path, chain_id: int, network: str, entries: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"chain_id": chain_id, "network": network, "contracts": entries}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def _container(project: Any, contract: str) -> Any:
    try:
        return getattr(project, contract)
    except AttributeError:
        raise DeployError(f"contract type {contract} is not in the ape project") from None


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


def _check_holds(call: Call, contracts: dict[str, Any], addresses: dict[str, str]) -> bool:
    assert call.check is not None
    target = contracts[call.check_target]
    got = getattr(target, call.check.view)(*_resolve(call.check.args, addresses, 0))
    if call.check.op == "nonzero":
        return bool(got)
    return _same(got, _resolve(call.check.expect, addresses, 0))


def deploy(
    config: DeployConfig,
    *,
    dry_run: bool = False,
    records_dir: Path = DEPLOYMENTS_DIR,
    log: Callable[[str], None] = print,
) -> Deployment:
    """Deploy and wire everything `config` describes on the connected network.

    Kept contracts (recorded, code on chain) are not redeployed and satisfied wiring checks are
    not re-sent, so a second run sends nothing. With `dry_run` nothing is sent: the plan is
    printed with what would happen.
    """
    from ape import chain, networks, project

    network = current_network()
    account = resolve_account(config, network)
    chain_id = int(chain.chain_id)
    path = record_path(chain_id, records_dir)
    entries = load_record(path)
    provider = networks.provider

    # First a plan with nothing present, for the contract types; then check the records.
    draft = make_plan(config, network, str(account.address))
    present = []
    for d in draft.deploys:
        entry = entries.get(d.name)
        if not entry:
            continue
        if entry.get("contract") != d.contract:
            continue
        if _is_present(provider, _container(project, d.contract), entry["address"]):
            present.append(d.name)
    recorded = {name: e["address"] for name, e in entries.items() if isinstance(e, dict)}
    plan = make_plan(config, network, str(account.address), recorded, present)

    label = provider_label()
    log(f"network {label} (chain id {chain_id}); deployer {account.address}; record {path}")
    for note in plan.notes:
        log(f"note: {note}")
    if not network.is_local:
        balance = account.balance
        log(f"deployer balance {balance / 1e18:.6f} ETH")
        if balance == 0 and not dry_run and plan.to_deploy:
            raise DeployError(f"deployer {account.address} has no ETH on {network.label}")

    result = Deployment(chain_id, label, account, {}, plan, path, dry_run=dry_run)
    addresses: dict[str, str] = {}
    for d in plan.deploys:
        container = _container(project, d.contract)
        if d.keep:
            addresses[d.name] = recorded[d.name]
            result.contracts[d.name] = container.at(recorded[d.name])
            continue
        if dry_run:
            log(f"would deploy {d.name:<15} {d.contract}{describe(d.args)}")
            continue
        instance = _deploy_one(d, container, account, addresses, int(chain.blocks.head.timestamp))
        addresses[d.name] = str(instance.address)
        result.contracts[d.name] = instance
        result.deployed.append(d.name)
        creation = instance.creation_metadata
        receipt = chain.get_receipt(creation.txn_hash) if creation else None
        gas = int(receipt.gas_used) if receipt is not None else 0
        result.gas[d.name] = gas
        entries[d.name] = {
            "address": str(instance.address),
            "contract": d.contract,
            "args": _jsonable(_resolve(d.args, addresses, 0)),
            "tx": str(creation.txn_hash) if creation else None,
            "block": int(creation.block) if creation else None,
            "gas": gas,
        }
        _write_record(path, chain_id, network.label, entries)
        log(f"deployed {d.name:<15} {d.contract:<20} {instance.address}  gas {gas:,}")

    deployed_now = set(result.deployed)
    for call in plan.calls:
        if call.after_deploy_of is not None:
            due = call.after_deploy_of in deployed_now or (
                dry_run and not plan.deploy(call.after_deploy_of).keep
            )
        elif call.check is not None:
            missing = call.target not in result.contracts or (
                call.check_target not in result.contracts
            )
            due = True if missing else not _check_holds(call, result.contracts, addresses)
        else:
            due = True
        if not due:
            continue
        if dry_run:
            log(f"would call   {call.target}.{call.method}{describe(call.args)}  ({call.label})")
            continue
        args = _resolve(call.args, addresses, int(chain.blocks.head.timestamp))
        try:
            getattr(result.contracts[call.target], call.method)(*args, sender=account)
        except Exception as exc:
            raise DeployError(f"{call.label}: {call.target}.{call.method} failed: {exc}") from None
        result.calls_sent.append(call.label)
    _summary(result, log)
    return result


def _deploy_one(
    d: Deploy, container: Any, account: Any, addresses: dict[str, str], now: int
) -> Any:
    args = _resolve(d.args, addresses, now)
    try:
        return account.deploy(container, *args)
    except Exception as exc:
        raise DeployError(f"deploying {d.name} ({d.contract}) failed: {exc}") from None


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
            status = "deployed"
        elif d.keep:
            status = "kept"
        else:
            status = "would deploy" if result.dry_run else "-"
        address = str(result.contracts[d.name].address) if d.name in result.contracts else "-"
        gas = f"{result.gas[d.name]:,}" if d.name in result.gas else ""
        rows.append((d.name, d.contract, address, status, gas))
    widths = [
        max(len(r[i]) for r in [("name", "contract", "address", "status", "gas"), *rows])
        for i in range(5)
    ]
    header = ("name", "contract", "address", "status", "gas")
    log("")
    log("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    log("  ".join("-" * w for w in widths))
    for row in rows:
        log("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    log(
        f"{len(result.deployed)} deployed, "
        f"{sum(d.keep for d in result.plan.deploys)} kept, "
        f"{len(result.calls_sent)} wiring calls sent"
        + (" (dry run: nothing sent)" if result.dry_run else "")
    )


def deploy_from_files(
    config_file: Path | None = None,
    *,
    dry_run: bool = False,
    records_dir: Path = DEPLOYMENTS_DIR,
    log: Callable[[str], None] = print,
) -> Deployment:
    """Load the connected network's config file (or `config_file`) and deploy."""
    network = current_network()
    path = config_file or config_path(network.ecosystem, network.name)
    return deploy(load_config(path), dry_run=dry_run, records_dir=records_dir, log=log)
