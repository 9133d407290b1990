"""The deploy script as an operator uses it (issue #24): a keystore account signing with closed
stdin, the dry run on an anvil fork of a "public" network, drift reported and applied, and an
interrupted deploy resumed with its one-shot call.

Each test starts its own anvil (or lets ape-foundry start one) and stops it; the ape work runs
in a child process so the test session never holds a node. A "public network" is a local anvil
started with Base Sepolia's chain id and reached through BASE_SEPOLIA_RPC_URL, which is what
`--network base:sepolia:node` reads: nothing leaves the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from keeper.perp import PerpParams
from tests.integration.conftest import ROOT, child_env, run_driver, start_anvil

pytestmark = pytest.mark.integration
CONFIGS = ROOT / "deploy" / "networks"
# anvil's (and ape's) test mnemonic, account 1: funded on every fresh anvil.
KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def _driver(code: str, *args: str, env: dict[str, str] | None = None, timeout: int = 180) -> dict:
    head = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from ape import networks, accounts, project, chain
        from ape.logging import logger
        logger.set_level("ERROR")
        from kappa_ops.config import load_config
        from kappa_ops.deployer import deploy, DeployError
        out = {}
        """
    )
    program = head + textwrap.dedent(code) + '\nprint("RESULT " + json.dumps(out))'
    return run_driver(program, *args, env=env, timeout=timeout)


def _local_copy(tmp: Path, name: str, patch: str) -> Path:
    (tmp / "base-local.yaml").write_text((CONFIGS / "base-local.yaml").read_text())
    path = tmp / name
    path.write_text("extends: base-local.yaml\n" + patch)
    return path


def _write_keystore(folder: Path, alias: str, passphrase: str) -> str:
    from eth_account import Account

    accounts = folder / "accounts"
    accounts.mkdir(parents=True, exist_ok=True)
    (accounts / f"{alias}.json").write_text(json.dumps(Account.encrypt(KEY_1, passphrase)))
    return str(Account.from_key(KEY_1).address)


def test_keystore_account_deploys_with_closed_stdin_and_no_prompt(tmp_path: Path):
    data = tmp_path / "ape-data"
    address = _write_keystore(data, "ops", "s3cret")
    records = tmp_path / "records"
    cmd = [
        str(Path(sys.executable).parent / "ape"),
        "run",
        "deploy",
        "--network",
        "base:local:foundry",
        "--account",
        "ops",
        "--records-dir",
        str(records),
    ]
    # Without the passphrase and without a terminal: one line, before anything is sent.
    bare = subprocess.run(
        cmd,
        cwd=ROOT,
        env=child_env(APE_DATA_FOLDER=str(data)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bare.returncode == 1
    assert "APE_ACCOUNTS_ops_PASSPHRASE" in bare.stdout + bare.stderr
    assert "Traceback" not in bare.stdout + bare.stderr
    assert not list(records.glob("*.json"))

    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        env=child_env(APE_DATA_FOLDER=str(data), APE_ACCOUNTS_ops_PASSPHRASE="s3cret"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "Sign:" not in output
    assert "17 deployed" in output
    record = json.loads((records / "base-local-31337.json").read_text())
    assert record["network"] == "base:local"
    assert len(record["contracts"]) == 17
    assert {"order_book", "perp_book"} <= set(record["contracts"])
    assert record["calls"] and all(c["tx"] and c["block"] for c in record["calls"])
    # The keystore account signed everything: it is the deployer the plan made a feeder.
    feeder = [c for c in record["calls"] if c["method"] == "add_feeder"]
    assert feeder and feeder[0]["args"] == [address]


FORK_DRIVER = """
url, cfg_dir = sys.argv[1], Path(sys.argv[2])
with networks.parse_network_choice("base:sepolia:node"):
    me = accounts.test_accounts[0]
    usd = me.deploy(project.MockERC20, "USD Coin", "USDC", 6)
    weth = me.deploy(project.MockERC20, "Wrapped Ether", "WETH", 18)
    feeds = [me.deploy(project.MockAggregatorV3, d, "ETH / USD", 3000 * 10**d) for d in (8, 18, 6)]
    nonce = me.nonce
    base = (Path(cfg_dir) / "base.yaml").read_text()
    tokens = f"tokens: {{cash: '{usd.address}', underlying: '{weth.address}'}}\\n"
    sources = "".join(
        f"    - {{feed: '{f.address}', heartbeat: 3600}}\\n" for f in feeds
    )
    good = Path(cfg_dir) / "good.yaml"
    good.write_text(base + tokens + "oracle:\\n  min_sources: 3\\n  sources:\\n" + sources)
    lines = []
    dry = deploy(load_config(good, {"KAPPA_DEPLOYER": "nobody"}), dry_run=True,
                 records_dir=Path(cfg_dir), log=lines.append)
    out["lines"] = lines
    out["total_gas"] = dry.total_gas
    out["steps"] = len(dry.gas)
    out["nonce_unchanged"] = me.nonce == nonce
    out["records"] = [p.name for p in Path(cfg_dir).glob("*.json")]
    bad = Path(cfg_dir) / "bad.yaml"
    nocode = "0x" + "42" * 20
    bad.write_text(
        base + tokens + "oracle:\\n  min_sources: 3\\n  sources:\\n" + sources
        + f"    - {{feed: '{nocode}', heartbeat: 3600}}\\n"
    )
    try:
        deploy(load_config(bad, {"KAPPA_DEPLOYER": "nobody"}), dry_run=True,
               records_dir=Path(cfg_dir), log=lines.append)
        out["bad"] = None
    except DeployError as exc:
        out["bad"] = str(exc)
"""


def test_dry_run_on_a_fork_reports_gas_and_checks_addresses(tmp_path: Path):
    public = (CONFIGS / "base-sepolia.yaml").read_text()
    # The shipped public config without its tokens and oracle sources (the test supplies both).
    keep = []
    skip = False
    for line in public.splitlines():
        if line.startswith(("tokens:", "oracle:")):
            skip = True
            continue
        if skip and (line.startswith(" ") or not line.strip()):
            continue
        skip = False
        keep.append(line)
    (tmp_path / "base.yaml").write_text("\n".join(keep) + "\n")
    # Blocks every second: base:sepolia waits for 2 confirmations of each mock deployment.
    with start_anvil("--chain-id", "84532", "--block-time", "1") as (url, _):
        result = _driver(
            FORK_DRIVER, url, str(tmp_path), env=child_env(BASE_SEPOLIA_RPC_URL=url), timeout=600
        )
    text = "\n".join(result["lines"])
    assert "anvil fork of base:sepolia" in text
    assert "simulating as" in text  # no keystore needed for a dry run
    assert result["steps"] >= 10 and result["total_gas"] > 10_000_000
    assert "total gas" in text and "ETH" in text
    assert "engine" in text and "MarginEngine" in text
    assert result["nonce_unchanged"] and result["records"] == []
    assert result["bad"] is not None
    assert "oracle.sources[3].feed 0x4242" in result["bad"] and "no code" in result["bad"]
    assert "\n" not in result["bad"]


DRIFT_DRIVER = """
url, first, changed, records = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
quiet = lambda line: None
with networks.parse_network_choice("base:local:foundry", provider_settings={"host": url}):
    # Interrupted just after the sequencer feed is deployed (Ctrl-C in the middle).
    def stop(line):
        if line.startswith("deployed sequencer_feed"):
            raise KeyboardInterrupt
    try:
        deploy(load_config(first), records_dir=records, log=stop)
    except KeyboardInterrupt:
        pass
    resumed = deploy(load_config(first), records_dir=records, log=quiet)
    record = json.loads(next(records.glob("*.json")).read_text())
    out["resumed_deployed"] = resumed.deployed
    out["resumed_calls"] = resumed.calls_sent
    out["risk_increase_allowed"] = bool(resumed["oracle"].risk_increase_allowed())
    out["once_recorded"] = [c["label"] for c in record["calls"] if c.get("key")]
    again = deploy(load_config(first), records_dir=records, log=quiet)
    out["again"] = [again.deployed, again.calls_sent]

    # Drift: the config changes after the deployment.
    lines = []
    check = deploy(load_config(changed), mode="check", records_dir=records, log=lines.append)
    out["check_keys"] = sorted(d.key for d in check.drift)
    out["check_lines"] = lines
    plain_lines = []
    plain = deploy(load_config(changed), records_dir=records, log=plain_lines.append)
    out["plain"] = [plain.calls_sent, plain.fixes_sent, plain_lines[-1:]]
    out["plain_warned"] = any("--apply" in l for l in plain_lines)
    applied = deploy(load_config(changed), mode="apply", records_dir=records, log=quiet)
    out["applied"] = applied.fixes_sent
    after = deploy(load_config(changed), mode="check", records_dir=records, log=quiet)
    out["after"] = [d.key for d in after.drift]
    out["min_sources"] = int(applied["oracle"].min_sources())
    out["duration"] = int(applied["liquidator"].duration())
    out["perp_params"] = int(applied["perp_book"].market().params)

    # The record loses the order book: the engine has one and takes a book once, so the run
    # stops before it deploys or sends anything (and --check reports it).
    path = next(records.glob("*.json"))
    data = json.loads(path.read_text())
    del data["contracts"]["order_book"]
    path.write_text(json.dumps(data))
    nonce = applied.deployer.nonce
    try:
        deploy(load_config(changed), records_dir=records, log=quiet)
        out["blocked"] = None
    except DeployError as exc:
        out["blocked"] = str(exc)
    out["blocked_nonce"] = applied.deployer.nonce == nonce
    out["blocked_record"] = sorted(json.loads(path.read_text())["contracts"]) == sorted(
        data["contracts"]
    )
    lines = []
    deploy(load_config(changed), mode="check", records_dir=records, log=lines.append)
    out["blocked_check"] = [l for l in lines if l.startswith("blocked")]
"""


def test_interrupted_deploy_resumes_and_drift_is_reported_and_applied(tmp_path: Path, anvil):
    url, _ = anvil
    first = _local_copy(tmp_path, "first.yaml", "")
    changed = _local_copy(
        tmp_path,
        "changed.yaml",
        "oracle: {min_sources: 2}\nliquidator: {duration: 900}\nperp: {band: 0.03}\n",
    )
    records = tmp_path / "records"
    r = _driver(DRIFT_DRIVER, url, str(first), str(changed), str(records), timeout=600)
    # Resume: what was deployed before the interruption is kept, the one-shot call is sent.
    assert "sequencer_feed" not in r["resumed_deployed"] and "oracle" in r["resumed_deployed"]
    assert "sequencer up since before the grace period" in r["resumed_calls"]
    assert r["risk_increase_allowed"]
    assert r["once_recorded"] == ["sequencer up since before the grace period"]
    assert r["again"] == [[], []]
    # Drift: listed with its fixes, warned about on a plain run, sent with --apply.
    assert r["check_keys"] == ["liquidator.duration", "oracle.min_sources", "perp"]
    text = "\n".join(r["check_lines"])
    assert "oracle.min_sources: chain 3, config 2" in text
    assert "oracle.set_min_sources(2)" in text
    assert "liquidator.set_params(" in text
    assert (
        "perp: chain band 0.02, half_life 1800, convergence_hours 8, max_rate 0.0005, "
        "config band 0.03, half_life 1800, convergence_hours 8, max_rate 0.0005"
    ) in text
    band = 3 * 10**16
    assert f"perp_book.set_params({band}, 1800, 8, {5 * 10**14})" in text
    assert r["plain"][:2] == [[], []] and r["plain_warned"]
    assert r["applied"][0] == "oracle.set_min_sources(2)"
    assert r["applied"][1] == f"perp_book.set_params({band}, 1800, 8, {5 * 10**14})"
    assert r["applied"][2].startswith("liquidator.set_params(") and len(r["applied"]) == 3
    assert r["after"] == []
    assert (r["min_sources"], r["duration"]) == (2, 900)
    assert r["perp_params"] == PerpParams(band, 1800, 8, 5 * 10**14).pack()
    # A book the engine already has cannot be replaced: one line, nothing sent or recorded.
    blocked = r["blocked"]
    assert blocked is not None and "\n" not in blocked
    assert blocked.startswith("engine orders book: engine 0x")
    assert "already has order_book() = 0x" in blocked and "a new order_book" in blocked
    assert r["blocked_nonce"] and r["blocked_record"]
    assert len(r["blocked_check"]) == 1 and "engine orders book" in r["blocked_check"][0]


def test_cli_check_exits_3_on_drift_and_apply_reconciles(tmp_path: Path, anvil):
    """`ape run deploy` against a node of our own (APE_FOUNDRY_HOST): deploy, change the
    config, `--check` (exit 3, the differences and their calls), `--apply`, `--check` (0)."""
    url, _ = anvil
    first = _local_copy(tmp_path, "first.yaml", "")
    changed = _local_copy(tmp_path, "changed.yaml", "liquidator: {duration: 900}\n")
    ape = str(Path(sys.executable).parent / "ape")
    env = child_env(APE_FOUNDRY_HOST=url)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [ape, "run", "deploy", "--network", "base:local:foundry"]
        cmd += ["--records-dir", str(tmp_path / "records"), *args]
        return subprocess.run(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
        )

    assert run("--config", str(first)).returncode == 0
    check = run("--config", str(changed), "--check")
    out = check.stdout + check.stderr
    assert check.returncode == 3, out[-2000:]
    assert "liquidator.duration: chain 600, config 900" in out
    assert "liquidator.set_params(" in out
    both = run("--config", str(changed), "--check", "--apply")
    assert both.returncode == 2 and "exclude each other" in both.stdout + both.stderr
    applied = run("--config", str(changed), "--apply")
    assert applied.returncode == 0, (applied.stdout + applied.stderr)[-2000:]
    again = run("--config", str(changed), "--check")
    assert again.returncode == 0 and "in sync" in again.stdout + again.stderr
    typo = _local_copy(tmp_path, "typo.yaml", "oracle: {grace_periode: 7200}\n")
    bad = run("--config", str(typo))
    assert bad.returncode == 1
    assert f"{typo}: oracle.grace_periode: unknown key" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr
