"""kappa_ops.config and kappa_ops.plan: per-network configs and the deployment plan (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kappa_ops.config import CONFIG_DIR, WAD, ConfigError, config_path, load_config
from kappa_ops.plan import ZERO_ADDRESS, Check, Fix, Now, PlanError, Ref, make_plan, settings
from kappa_ops.plan import Network as Net

LOCAL = Net("base", "local", True)
SEPOLIA = Net("base", "sepolia", False)
ME = "0x" + "11" * 20


def local():
    return load_config(config_path("base", "local"))


def test_every_shipped_config_parses():
    env = {"KAPPA_DEPLOYER": "kappa"}
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        config = load_config(path, env)
        assert config.risk.im.k >= config.risk.mm.k, path


def test_local_config_values_become_exact_wads():
    c = local()
    assert c.risk.grid.tau_ref == WAD // 12
    assert c.risk.grid.tau_floor == WAD // 365
    assert c.oracle.grace_liquidation_buffer == WAD // 100
    assert c.mocks is not None and c.mocks.feed_decimals == (8, 18, 6)
    assert [p.fee_bps for p in c.pools] == [5, 30, 100]
    assert len({p.depth for p in c.pools}) == 3


def test_extends_and_environment_substitution():
    c = load_config(config_path("arbitrum", "sepolia"), {"KAPPA_DEPLOYER": "ops"})
    assert c.deployer.alias == "ops"
    assert c.tokens is not None and c.tokens.underlying.lower().startswith("0x980b62")
    assert len(c.oracle.sources) == 1 and c.oracle.sequencer_feed is None
    with pytest.raises(ConfigError, match="KAPPA_DEPLOYER is not set"):
        load_config(config_path("base", "sepolia"), {})


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ("risk:\n  im: {k: 2}\n", "risk.im.k: must be at least mm's"),
        ("vol: {vol_min: abc}\n", "vol.vol_min: expected a number"),
        ("oracle: {min_sources: 5}\n", "oracle.min_sources: must be in 1..3"),
        ("pools:\n  - {fee_bps: 30}\n  - {fee_bps: 30}\n", "two pools with the same fee"),
        ("surprise: 1\n", "surprise: unknown key"),
        (
            "oracle: {grace_periode: 7200}\n",
            r"oracle\.grace_periode: unknown key \(did you mean 'grace_period'\?\)",
        ),
        (
            "pools:\n  - {fee_bps: 5, depht: 10}\n",
            r"pools\[0\]\.depht: unknown key \(did you mean 'depth'\?\)",
        ),
        ("risk:\n  grid: {nn: 3}\n", r"risk\.grid\.nn: unknown key"),
        (
            "oracle: {heartbeat: -1}\n",
            r"oracle\.heartbeat: Input should be greater than or equal to 1",
        ),
        ("deployer: {test_account: true}\n", r"deployer\.test_account: expected an integer"),
        ("tokens: {cash: '0x1', underlying: '0x2'}\n", "tokens.cash: expected a 0x-prefixed"),
        ("risk:\n  im: {a_perp: 0.005}\n", r"risk\.im\.a_perp: must be at least mm's"),
        ("risk:\n  mm: {a_perp: 0.3}\n", r"risk\.mm\.a_perp: must be in \[0, 0\.2\], got 0\.3"),
        ("perp: {band: 0.0005}\n", r"perp\.band: must be in \[0\.001, 0\.2\], got 0\.0005"),
        ("perp: {band: 0.01234}\n", r"perp\.band: must be a whole multiple of 0\.0001"),
        (
            "perp: {half_life: 30}\n",
            r"perp\.half_life: Input should be greater than or equal to 60",
        ),
        (
            "perp: {convergence_hours: 169}\n",
            r"perp\.convergence_hours: Input should be less than or equal to 168, got 169",
        ),
        ("perp: {max_rate: 0.02}\n", r"perp\.max_rate: must be in \[0, 0\.01\] an hour"),
        ("perp: {max_rate: 0.0000005}\n", r"perp\.max_rate: must be a whole multiple of 0\.000001"),
        ("perp: {bandd: 0.02}\n", r"perp\.bandd: unknown key \(did you mean 'band'\?\)"),
    ],
)
def test_bad_configs_fail_with_one_line(tmp_path: Path, patch: str, message: str):
    (tmp_path / "base-local.yaml").write_text((CONFIG_DIR / "base-local.yaml").read_text())
    path = tmp_path / "bad.yaml"
    path.write_text("extends: base-local.yaml\n" + patch)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_invalid_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_fresh_local_plan_deploys_everything_in_dependency_order():
    plan = make_plan(local(), LOCAL, ME)
    names = plan.names
    assert len(plan.to_deploy) == len(names)
    for d in plan.deploys:
        for dep in d.deps:
            assert names.index(dep) < names.index(d.name), (d.name, dep)
    assert {d.name for d in plan.deploys if d.mock} == {
        "usd",
        "weth",
        "feed_8",
        "feed_18",
        "feed_6",
        "sequencer_feed",
    }
    engine = plan.deploy("engine")
    assert engine.args[:5] == (
        Ref("calculator"),
        Ref("oracle"),
        Ref("vol_oracle"),
        Ref("usd"),
        Ref("weth"),
    )
    assert plan.deploy("liquidator").args[0] == Ref("engine")
    seq = [c for c in plan.calls if c.target == "sequencer_feed"]
    assert seq and isinstance(seq[0].args[2], Now) and seq[0].once
    seeding = [c for c in plan.calls if c.label.startswith("liquidity")]
    assert len(seeding) == 15 and all(c.check_target.startswith("pool_") for c in seeding)


def test_recorded_and_present_contracts_are_kept_with_their_dependants_only():
    full = make_plan(local(), LOCAL, ME)
    recorded = {n: "0x" + f"{i:040x}" for i, n in enumerate(full.names, 1)}
    everything = make_plan(local(), LOCAL, ME, recorded, present=recorded)
    assert everything.to_deploy == ()
    # The oracle's code is gone: the oracle and everything built on it is redeployed.
    present = set(recorded) - {"oracle"}
    partial = make_plan(local(), LOCAL, ME, recorded, present)
    assert {d.name for d in partial.to_deploy} == {
        "oracle",
        "engine",
        "liquidator",
        "order_book",
        "perp_book",
    }
    # Recorded but not present (a fresh node) means deploy.
    assert len(make_plan(local(), LOCAL, ME, recorded, ()).to_deploy) == len(full.names)


def test_mocks_are_refused_on_public_networks():
    with pytest.raises(PlanError, match="refusing to deploy mock"):
        make_plan(local(), SEPOLIA, ME)


def test_public_plan_uses_existing_tokens_and_feeds():
    c = load_config(config_path("base", "sepolia"), {"KAPPA_DEPLOYER": "ops"})
    plan = make_plan(c, SEPOLIA, ME)
    assert not any(d.mock for d in plan.deploys)
    assert c.tokens is not None and plan.deploy("engine").args[3] == c.tokens.cash
    assert plan.deploy("oracle").args[0] == [c.oracle.sources[0].feed]
    assert not any(call.label.startswith("liquidity") for call in plan.calls)
    assert any("sequencer" in note for note in plan.notes)


def test_public_network_needs_a_keystore_alias():
    c = local()
    with pytest.raises(PlanError, match="refusing"):
        make_plan(c, SEPOLIA, ME)
    public = load_config(config_path("base", "sepolia"), {"KAPPA_DEPLOYER": "ops"})
    no_alias = public.model_copy(update={"deployer": type(public.deployer)(test_account=0)})
    with pytest.raises(PlanError, match=r"deployer\.alias"):
        make_plan(no_alias, SEPOLIA, ME)


def test_keeper_and_settlement_timeout_are_accepted(tmp_path: Path):
    (tmp_path / "base-local.yaml").write_text((CONFIG_DIR / "base-local.yaml").read_text())
    path = tmp_path / "k.yaml"
    path.write_text(
        "extends: base-local.yaml\n"
        "oracle: {settlement_timeout: 86400}\n"
        "keeper: {roles: {liquidator: true}, anything: [1, 2]}\n"
    )
    c = load_config(path)
    assert c.oracle.settlement_timeout == 86400
    # Merged over base-local's own keeper section; its contents are keeper/runtime's to check.
    assert c.keeper is not None
    assert c.keeper["roles"]["liquidator"] is True and c.keeper["anything"] == [1, 2]


def test_file_and_key_path_in_the_message(tmp_path: Path):
    (tmp_path / "base-local.yaml").write_text((CONFIG_DIR / "base-local.yaml").read_text())
    path = tmp_path / "typo.yaml"
    path.write_text("extends: base-local.yaml\noracle: {grace_periode: 7200}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: oracle.grace_periode: unknown key")


def test_settings_cover_the_setters_and_sources_fix_in_a_safe_order():
    from kappa_ops.plan import source_fixes

    public = load_config(config_path("base", "sepolia"), {"KAPPA_DEPLOYER": "ops"})
    keys = {s.key: s for s in settings(public)}
    assert keys["oracle.min_sources"].fix.method == "set_min_sources"
    assert keys["liquidator.duration"].fix.method == "set_params"
    assert keys["risk.mm.k"].fix.method == "set_risk_params"
    assert keys["risk.caps.cash"].fix.method == "set_caps"
    assert keys["tokens.cash"].fix.method is None  # only a redeploy changes a token
    a, b, c = "0x" + "a" * 40, "0x" + "b" * 40, "0x" + "c" * 40
    first, last = source_fixes([(a, 60), (b, 120)], [(a, 30), (c, 60)])
    assert [f.method for _, f in first] == ["add_source", "set_heartbeat"]
    assert [f.method for _, f in last] == ["remove_source"]


def test_perp_and_perp_contingencies_are_read_as_wads():
    c = local()
    assert (c.risk.mm.a_perp, c.risk.im.a_perp) == (WAD // 100, WAD * 25 // 1000)
    assert c.risk.im.args()[-1] == c.risk.im.a_perp  # risk.Mode's order: a_perp last
    assert c.perp.args() == (WAD // 50, 1800, 8, WAD // 2000)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("perp", r"^\S+: perp: missing$"),
        ("a_perp", r"^\S+: risk\.im\.a_perp: missing$"),
    ],
)
def test_perp_settings_are_required(tmp_path: Path, drop: str, message: str):
    data = yaml.safe_load((CONFIG_DIR / "base-local.yaml").read_text())
    if drop == "perp":
        del data["perp"]
    else:
        del data["risk"]["im"]["a_perp"]
    path = tmp_path / "base-local.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_books_are_deployed_on_the_engine_and_wired_once():
    c = local()
    plan = make_plan(c, LOCAL, ME)
    assert plan.deploy("order_book").contract == "OrderBook"
    assert plan.deploy("order_book").args == (Ref("engine"),)
    assert plan.deploy("perp_book").contract == "PerpBook"
    assert plan.deploy("perp_book").args == (Ref("engine"),)
    calls = {call.label: call for call in plan.calls}
    orders, perps = calls["engine orders book"], calls["engine perps book"]
    assert (orders.target, orders.method, orders.args) == (
        "engine",
        "set_role",
        ("orders", Ref("order_book")),
    )
    assert orders.check == Check("order_book", (), Ref("order_book"))
    assert orders.only_if == Check("order_book", (), ZERO_ADDRESS)
    assert (perps.args, perps.check) == (
        ("perps", Ref("perp_book")),
        Check("perp_book", (), Ref("perp_book")),
    )
    assert perps.only_if == Check("perp_book", (), ZERO_ADDRESS)
    listing = calls["perp listed"]
    assert (listing.target, listing.method) == ("perp_book", "list_perp")
    assert listing.args == c.perp.args() and listing.check == Check("listed")
    assert not listing.once
    # The plan hands over no role: the deployer, the engine's risk admin from its constructor
    # on, lists the perp after the books are wired.
    labels = [call.label for call in plan.calls]
    assert labels.index("perp listed") > labels.index("engine perps book")
    assert not any(call.method in ("transfer_ownership", "set_owner") for call in plan.calls)
    assert not any(call.args[:1] in (("risk_admin",), ("guardian",)) for call in plan.calls)
    # A complete deployment keeps the books too.
    recorded = {n: "0x" + f"{i:040x}" for i, n in enumerate(plan.names, 1)}
    assert make_plan(c, LOCAL, ME, recorded, present=recorded).to_deploy == ()


def test_funding_beyond_the_perp_contingency_gap_is_noted():
    c = local()
    assert not any("perp.max_rate" in note for note in make_plan(c, LOCAL, ME).notes)
    fast = c.model_copy(update={"perp": c.perp.model_copy(update={"max_rate": WAD // 1000})})
    notes = [n for n in make_plan(fast, LOCAL, ME).notes if n.startswith("perp.max_rate")]
    assert notes == [
        "perp.max_rate: funding over the margin horizon (up to 0.024 of the notional) exceeds "
        "im.a_perp - mm.a_perp (0.015)"
    ]


def test_settings_cover_perp_contingencies_and_the_perp_params():
    from keeper.perp import PerpParams

    c = local()
    keys = {s.key: s for s in settings(c)}
    for mode, i in (("im", 0), ("mm", 1)):
        a_perp = keys[f"risk.{mode}.a_perp"]
        assert (a_perp.view, a_perp.pick, a_perp.unit) == ("risk_params", (i, 5), "wad")
        assert a_perp.expect == getattr(c.risk, mode).a_perp
        assert a_perp.fix.method == "set_risk_params"
        assert a_perp.fix.args[i][5] == a_perp.expect
    perp = keys["perp"]
    assert (perp.target, perp.view, perp.pick, perp.requires) == (
        "perp_book",
        "market",
        (4,),
        "listed",
    )
    assert PerpParams.unpack(perp.expect) == PerpParams(*c.perp.args())
    assert perp.fix == Fix("perp_book", "set_params", c.perp.args())
