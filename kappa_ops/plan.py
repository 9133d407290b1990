"""What to deploy and wire on a network, from a config and what is already there (pure).

`make_plan(config, network, deployer, recorded, present)` returns a `Plan`: the contracts in
dependency order, each either kept (recorded in `deployments/<network>-<chain-id>.json`, its
code is on chain and every contract it was built on is kept) or to deploy, then the wiring
calls. A call carries a `Check` (a view and the value that means "already done") or is a
one-shot call (`once=True`: sent once per deployed address of its target, recorded as done in
the record), so re-running a complete deployment, or resuming an interrupted one, sends only
what has not happened.

`settings(config)` lists every parameter the config sets on a deployed contract, with the view
that reads it and the setter that changes it (or none: only a redeploy does); the deployer
compares them with the chain (`--check`) and sends the setters (`--apply`).

Arguments refer to other contracts of the plan with `Ref(name)` and to the chain time with
`Now(offset)`; the executor (`kappa_ops.deployer`) resolves them.

Names: usd, weth (local tokens), feed_<decimals> (mock price feeds), sequencer_feed, oracle,
vol_oracle, calculator, engine, router, pool_<fee_bps>, liquidator, order_book (OrderBook: the
signed orders, the engine's "orders" role) and perp_book (PerpBook: the perp, the engine's
"perps" role). The engine takes each book once: a call with `only_if` (the engine's view still
zero) that can no longer succeed stops the executor before it sends anything. The perp is
listed while the deployer is still the engine's risk admin: the plan hands over no role, so the
deployer holds every one afterwards (owner, risk admin, guardian, VolOracle feeder); hand them
over with the contracts' own role functions once the deployment is complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kappa_ops.config import DeployConfig
from keeper.interest import RateParams
from keeper.perp import PerpParams

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class PlanError(ValueError):
    """A deployment that must not run (one-line message)."""


@dataclass(frozen=True)
class Ref:
    """The address of the plan's contract `name`."""

    name: str


@dataclass(frozen=True)
class Now:
    """The latest block's timestamp plus `offset` seconds."""

    offset: int = 0


@dataclass(frozen=True)
class Network:
    """The network as the plan needs it: a label such as 'base:sepolia' and whether it is a
    local development chain (anvil, eth-tester) rather than a public one."""

    ecosystem: str
    name: str
    is_local: bool

    @property
    def label(self) -> str:
        return f"{self.ecosystem}:{self.name}"


@dataclass(frozen=True)
class Deploy:
    name: str
    contract: str  # contract type in the ape project
    args: tuple[Any, ...]
    mock: bool = False
    keep: bool = False  # already deployed: nothing to send

    @property
    def deps(self) -> tuple[str, ...]:
        return tuple(_refs(self.args))


@dataclass(frozen=True)
class Check:
    """`target.view(*args)` compared with `expect`: op "eq" (addresses case-insensitively) or
    "nonzero" (expect ignored)."""

    view: str
    args: tuple[Any, ...] = ()
    expect: Any = True
    op: str = "eq"


@dataclass(frozen=True)
class Call:
    label: str
    target: str  # a contract name of the plan
    method: str
    args: tuple[Any, ...]
    check: Check | None = None  # skip when the check holds
    once: bool = False  # or: a one-shot call, sent once per address of `target` (recorded)
    check_on: str | None = None  # the contract the check reads (default: target)
    # The call can succeed only while this holds on `target` (a role set once): when it no
    # longer does and `check` fails, the deployment cannot be completed as planned.
    only_if: Check | None = None

    @property
    def check_target(self) -> str:
        return self.check_on or self.target


@dataclass(frozen=True)
class Plan:
    network: Network
    deployer: str
    deploys: tuple[Deploy, ...]
    calls: tuple[Call, ...]
    notes: tuple[str, ...] = field(default=())

    def deploy(self, name: str) -> Deploy:
        for d in self.deploys:
            if d.name == name:
                return d
        raise KeyError(name)

    @property
    def to_deploy(self) -> tuple[Deploy, ...]:
        return tuple(d for d in self.deploys if not d.keep)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.deploys)


def refs(value: Any) -> tuple[str, ...]:
    """The names of the plan's contracts that `value` (an argument, a check) refers to."""
    return tuple(_refs(value))


def _refs(value: Any) -> Iterable[str]:
    if isinstance(value, Ref):
        yield value.name
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _refs(v)


def _wad_spot(spot: Any, decimals: int) -> int:
    return int(spot * 10**decimals)


def make_plan(
    config: DeployConfig,
    network: Network,
    deployer: str,
    recorded: Mapping[str, str] | None = None,
    present: Iterable[str] = (),
) -> Plan:
    """The plan for `network`. `recorded` maps names to the addresses of the record file;
    `present` holds the recorded names whose code is on chain (checked by the executor).

    Raises PlanError for mock contracts on a public network and for a public network without a
    keystore account.
    """
    if config.mocks is not None and not network.is_local:
        raise PlanError(
            f"refusing to deploy mock tokens and feeds to public network {network.label} "
            f"({config.source} has a 'mocks' section)"
        )
    if not network.is_local and config.deployer.alias is None:
        raise PlanError(
            f"{network.label} is a public network: set deployer.alias in {config.source} "
            "(an account from `ape accounts import`)"
        )
    recorded = dict(recorded or {})
    present_set = set(present)
    deploys: list[Deploy] = []
    calls: list[Call] = []
    notes: list[str] = []

    mocks = config.mocks
    if mocks is not None:
        cash: Any = Ref("usd")
        underlying: Any = Ref("weth")
        for name, token in (("usd", mocks.cash), ("weth", mocks.underlying)):
            deploys.append(
                Deploy(name, "MockERC20", (token.name, token.symbol, token.decimals), mock=True)
            )
        feed_refs: list[Any] = []
        for decimals in mocks.feed_decimals:
            name = f"feed_{decimals}"
            if name in (d.name for d in deploys):
                raise PlanError(f"{config.source}: two mock feeds with {decimals} decimals")
            answer = _wad_spot(mocks.spot, decimals)
            deploys.append(
                Deploy(name, "MockAggregatorV3", (decimals, "ETH / USD", answer), mock=True)
            )
            feed_refs.append(Ref(name))
        heartbeats = [config.oracle.heartbeat] * len(feed_refs)
        sequencer: Any = ZERO_ADDRESS
        if mocks.sequencer_feed:
            deploys.append(Deploy("sequencer_feed", "MockSequencerFeed", (False,), mock=True))
            sequencer = Ref("sequencer_feed")
            # Up since well before the grace period, as a long-running L2 sequencer is.
            started = Now(-(2 * config.oracle.grace_period + 60))
            calls.append(
                Call(
                    "sequencer up since before the grace period",
                    "sequencer_feed",
                    "set_round_data",
                    (1, 0, started, Now(0), 1),
                    once=True,
                )
            )
    else:
        assert config.tokens is not None
        cash, underlying = config.tokens.cash, config.tokens.underlying
        feed_refs = [s.feed for s in config.oracle.sources]
        heartbeats = [s.heartbeat for s in config.oracle.sources]
        sequencer = config.oracle.sequencer_feed or ZERO_ADDRESS
        if sequencer == ZERO_ADDRESS:
            notes.append("no sequencer-uptime feed: the oracle treats the chain as always up")

    o = config.oracle
    deploys.append(
        Deploy(
            "oracle",
            "OracleAggregator",
            (
                feed_refs,
                heartbeats,
                o.min_sources,
                sequencer,
                o.grace_period,
                o.grace_liquidation_buffer,
            ),
        )
    )
    deploys.append(Deploy("vol_oracle", "VolOracle", config.vol.args()))
    deploys.append(Deploy("calculator", "RiskCalculator", ()))
    r = config.risk
    deploys.append(
        Deploy(
            "engine",
            "MarginEngine",
            (
                Ref("calculator"),
                Ref("oracle"),
                Ref("vol_oracle"),
                cash,
                underlying,
                r.im.args(),
                r.mm.args(),
                r.grid.args(),
                r.ref_vol,
            ),
        )
    )
    deploys.append(Deploy("router", "Router", ()))
    for pool in config.pools:
        deploys.append(
            Deploy(
                pool.name,
                "ConstantProductPool",
                (
                    underlying,
                    cash,
                    pool.fee_bps,
                    f"Kappa LP {pool.fee_bps}bp",
                    f"KLP{pool.fee_bps}",
                ),
            )
        )
    deploys.append(Deploy("liquidator", "Liquidator", (Ref("engine"), *config.liquidator.args())))
    deploys.append(Deploy("order_book", "OrderBook", (Ref("engine"),)))
    deploys.append(Deploy("perp_book", "PerpBook", (Ref("engine"),)))

    # Wiring: each call is skipped when its check already holds.
    for feeder in (deployer, *config.feeders):
        calls.append(
            Call(
                f"VolOracle feeder {feeder}",
                "vol_oracle",
                "add_feeder",
                (feeder,),
                Check("is_feeder", (feeder,)),
            )
        )
    calls.append(
        Call(
            "engine router",
            "engine",
            "set_role",
            ("router", Ref("router")),
            Check("router", (), Ref("router")),
        )
    )
    for pool in config.pools:
        calls.append(
            Call(
                f"engine venue {pool.name}",
                "engine",
                "set_venue",
                (Ref(pool.name), True),
                Check("is_venue", (Ref(pool.name),)),
            )
        )
    calls.append(
        Call(
            "engine liquidator",
            "engine",
            "set_role",
            ("liquidator", Ref("liquidator")),
            Check("liquidator", (), Ref("liquidator")),
        )
    )
    for role, name, view in (
        ("orders", "order_book", "order_book"),
        ("perps", "perp_book", "perp_book"),
    ):
        calls.append(
            Call(
                f"engine {role} book",
                "engine",
                "set_role",
                (role, Ref(name)),
                Check(view, (), Ref(name)),
                only_if=Check(view, (), ZERO_ADDRESS),
            )
        )
    # While the deployer is the engine's risk admin (it is from the engine's constructor on).
    calls.append(Call("perp listed", "perp_book", "list_perp", config.perp.args(), Check("listed")))
    funding = config.perp.max_rate * config.risk.grid.horizon // 3600
    gap = config.risk.im.a_perp - config.risk.mm.a_perp
    if funding > gap:
        notes.append(
            f"perp.max_rate: funding over the margin horizon (up to {funding / 1e18:.4g} of the "
            f"notional) exceeds im.a_perp - mm.a_perp ({gap / 1e18:.4g})"
        )
    if mocks is not None:
        for pool in config.pools:
            if not pool.depth:
                continue
            weth_amount = int(pool.depth * 10**mocks.underlying.decimals)
            usd_amount = int(pool.depth * mocks.spot * 10**mocks.cash.decimals)
            seeded = Check("totalSupply", (), op="nonzero")
            label = f"liquidity {pool.name}"
            on = pool.name
            calls += [
                Call(label, "weth", "mint", (deployer, weth_amount), seeded, check_on=on),
                Call(label, "usd", "mint", (deployer, usd_amount), seeded, check_on=on),
                Call(label, "weth", "approve", (Ref(on), weth_amount), seeded, check_on=on),
                Call(label, "usd", "approve", (Ref(on), usd_amount), seeded, check_on=on),
                Call(label, on, "add_liquidity", (weth_amount, usd_amount, 0, deployer), seeded),
            ]
    # Keep what is recorded, on chain, and built only on kept contracts.
    kept: set[str] = set()
    final: list[Deploy] = []
    for d in deploys:
        keep = d.name in recorded and d.name in present_set and all(n in kept for n in d.deps)
        if keep:
            kept.add(d.name)
        final.append(Deploy(d.name, d.contract, d.args, d.mock, keep))
    return Plan(network, deployer, tuple(final), tuple(calls), tuple(notes))


def describe(value: Any) -> str:
    """A short rendering of an argument for the dry-run listing."""
    if isinstance(value, Ref):
        return f"<{value.name}>"
    if isinstance(value, Now):
        return f"<now{value.offset:+d}s>" if value.offset else "<now>"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(describe(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


# ---------------------------------------------------------------------------------------------
# Settings: what the config sets on deployed contracts, for drift checks


@dataclass(frozen=True)
class Fix:
    """A call that makes settings true (`target.method(*args)`), or a redeploy of `target`
    when `method` is None."""

    target: str
    method: str | None
    args: tuple[Any, ...] = ()

    def render(self) -> str:
        if self.method is None:
            return f"redeploy {self.target}"
        return f"{self.target}.{self.method}({', '.join(describe(a) for a in self.args)})"


@dataclass(frozen=True)
class Setting:
    """`target.view(*args)` (its item `pick` for a struct or tuple answer) should equal
    `expect`; `fix` makes it so. `unit` renders values: "wad", "int", "address" or "perp" (a
    PerpBook params lane). With `requires` (a bool view of `target`) the setting is compared
    only while that view is true (a market not listed yet has no parameters to read)."""

    key: str  # the config key path, e.g. "oracle.min_sources"
    target: str
    view: str
    expect: Any
    fix: Fix
    args: tuple[Any, ...] = ()
    pick: tuple[int, ...] = ()
    unit: str = "int"
    requires: str | None = None


def settings(config: DeployConfig) -> tuple[Setting, ...]:
    """Every contract parameter `config` sets, in the order their fixes should be sent."""
    out: list[Setting] = []
    o = config.oracle
    for key, setter, value, unit in (
        ("min_sources", "set_min_sources", o.min_sources, "int"),
        ("grace_period", "set_grace_period", o.grace_period, "int"),
        (
            "grace_liquidation_buffer",
            "set_grace_liquidation_buffer",
            o.grace_liquidation_buffer,
            "wad",
        ),
    ):
        out.append(
            Setting(
                f"oracle.{key}", "oracle", key, value, Fix("oracle", setter, (value,)), unit=unit
            )
        )
    if o.settlement_timeout is not None:
        out.append(
            Setting(
                "oracle.settlement_timeout",
                "oracle",
                "settlement_timeout",
                o.settlement_timeout,
                Fix("oracle", "set_settlement_timeout", (o.settlement_timeout,)),
            )
        )
    if config.mocks is None:
        sequencer = o.sequencer_feed or ZERO_ADDRESS
        out.append(
            Setting(
                "oracle.sequencer_feed",
                "oracle",
                "sequencer_feed",
                sequencer,
                Fix("oracle", "set_sequencer_feed", (sequencer,)),
                unit="address",
            )
        )
    v = config.vol
    bounds = Fix("vol_oracle", "set_vol_bounds", (v.vol_min, v.vol_max))
    out += [
        Setting("vol.vol_min", "vol_oracle", "vol_min", v.vol_min, bounds, unit="wad"),
        Setting("vol.vol_max", "vol_oracle", "vol_max", v.vol_max, bounds, unit="wad"),
    ]
    for key, view, setter, value, unit in (
        ("max_change", "max_change", "set_max_change", v.max_change, "wad"),
        ("max_skew", "max_skew", "set_max_skew", v.max_skew, "wad"),
        ("heartbeat", "vol_heartbeat", "set_vol_heartbeat", v.heartbeat, "int"),
        ("stale_markup", "stale_markup", "set_stale_markup", v.stale_markup, "wad"),
    ):
        out.append(
            Setting(
                f"vol.{key}",
                "vol_oracle",
                view,
                value,
                Fix("vol_oracle", setter, (value,)),
                unit=unit,
            )
        )

    r = config.risk
    risk_fix = Fix(
        "engine",
        "set_risk_params",
        (r.im.args(), r.mm.args(), r.grid.args(), r.ref_vol, r.max_positions),
    )
    for i, mode in ((0, "im"), (1, "mm")):
        spec = r.im if mode == "im" else r.mm
        for j, name in enumerate(("k", "v", "a", "conf", "haircut", "a_perp")):
            out.append(
                Setting(
                    f"risk.{mode}.{name}",
                    "engine",
                    "risk_params",
                    getattr(spec, name),
                    risk_fix,
                    pick=(i, j),
                    unit="wad",
                )
            )
    for j, name in enumerate(("n", "horizon", "u_min", "u_max", "tau_ref", "tau_floor", "v_max")):
        unit = "int" if name in ("n", "horizon") else "wad"
        out.append(
            Setting(
                f"risk.grid.{name}",
                "engine",
                "risk_params",
                r.grid.args()[j],
                risk_fix,
                pick=(2, j),
                unit=unit,
            )
        )
    out.append(
        Setting("risk.ref_vol", "engine", "risk_params", r.ref_vol, risk_fix, pick=(3,), unit="wad")
    )
    out.append(
        Setting("risk.max_positions", "engine", "risk_params", r.max_positions, risk_fix, pick=(4,))
    )
    rates = r.interest.args()
    rates_fix = Fix("engine", "set_interest_params", rates)
    # The engine returns the rate's parameters packed (MarginEngine.cash_totals: size).
    out += [
        Setting(
            "risk.interest",
            "engine",
            "cash_totals",
            RateParams(*rates).packed(),
            rates_fix,
            pick=(2,),
        ),
        Setting(
            "risk.interest.utilization_cap",
            "engine",
            "cash_totals",
            rates[5],
            rates_fix,
            pick=(3,),
            unit="wad",
        ),
    ]
    caps = r.caps.args()
    caps_fix = Fix("engine", "set_caps", caps)
    out += [
        Setting("risk.caps.cash", "engine", "cash_cap", caps[0], caps_fix, unit="wad"),
        Setting("risk.caps.underlying", "engine", "underlying_cap", caps[1], caps_fix, unit="wad"),
    ]
    if config.tokens is not None:
        out += [
            Setting(
                "tokens.cash",
                "engine",
                "cash_token",
                config.tokens.cash,
                Fix("engine", None),
                unit="address",
            ),
            Setting(
                "tokens.underlying",
                "engine",
                "underlying_token",
                config.tokens.underlying,
                Fix("engine", None),
                unit="address",
            ),
        ]
    perp = config.perp
    out.append(
        Setting(
            "perp",
            "perp_book",
            "market",
            PerpParams(*perp.args()).pack(),
            Fix("perp_book", "set_params", perp.args()),
            pick=(4,),  # perp.Market.params
            unit="perp",
            requires="listed",
        )
    )
    q = config.liquidator
    liq_fix = Fix("liquidator", "set_params", q.args())
    for name in ("d_start", "d_max", "duration", "fund_share", "buffer", "dust"):
        unit = "int" if name == "duration" else "wad"
        out.append(
            Setting(f"liquidator.{name}", "liquidator", name, getattr(q, name), liq_fix, unit=unit)
        )
    return tuple(out)


def source_fixes(
    wanted: list[tuple[str, int]], actual: list[tuple[str, int]]
) -> tuple[list[tuple[str, Fix]], list[tuple[str, Fix]]]:
    """(what differs, fix) pairs that turn the oracle's sources `actual` [(feed, heartbeat)]
    into `wanted`, as (additions and heartbeats, removals): the deployer sends min_sources'
    fix between the two, so that no step breaks 1 <= min_sources <= count."""
    have = {feed.lower(): hb for feed, hb in actual}
    want = {feed.lower(): hb for feed, hb in wanted}
    adds, beats, removes = [], [], []
    for feed, hb in wanted:
        if feed.lower() not in have:
            adds.append(
                (f"oracle.sources: {feed} missing", Fix("oracle", "add_source", (feed, hb)))
            )
        elif have[feed.lower()] != hb:
            beats.append(
                (
                    f"oracle.sources: {feed} heartbeat {have[feed.lower()]} -> {hb}",
                    Fix("oracle", "set_heartbeat", (feed, hb)),
                )
            )
    for feed, _ in actual:
        if feed.lower() not in want:
            removes.append(
                (
                    f"oracle.sources: {feed} not in the config",
                    Fix("oracle", "remove_source", (feed,)),
                )
            )
    return adds + beats, removes
