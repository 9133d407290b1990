"""Per-network deployment config: `deploy/networks/<ecosystem>-<network>.yaml` (pure, no I/O
beyond reading the file).

A file describes what to deploy and every constructor parameter, in human units: fractions such
as `0.05` or `1/12` become wads exactly (`Fraction`, floored), durations are seconds, fees basis
points. `${VAR}` and `${VAR:-default}` in a string value are read from the environment (RPC
URLs, account aliases), so nothing secret lives in the file. `extends: <file>` loads another
file of the same folder first and merges this one over it (mappings key by key).

Two kinds of network:
- local (`mocks:` present): the deployer also creates the cash and underlying tokens, mock price
  feeds, a mock sequencer-uptime feed and pools with liquidity. Only allowed on local networks
  (checked by `kappa_ops.plan`).
- public (`tokens:` and `oracle.sources:` present): existing tokens and Chainlink-style feeds;
  pools are deployed empty.

Every error is a `ConfigError` with a one-line message naming the file and the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

WAD = 10**18
ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "deploy" / "networks"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class ConfigError(ValueError):
    """A config file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class TokenSpec:
    name: str
    symbol: str
    decimals: int


@dataclass(frozen=True)
class PoolSpec:
    """A ConstantProductPool (underlying/cash) with `fee_bps`; on local networks it is seeded
    with `depth` units of underlying and `depth * spot` of cash."""

    fee_bps: int
    depth: Fraction

    @property
    def name(self) -> str:
        return f"pool_{self.fee_bps}"


@dataclass(frozen=True)
class MockSpec:
    """Local networks only: tokens, `len(feed_decimals)` mock ETH/USD feeds at `spot`, and a
    mock sequencer-uptime feed (up since well before the grace period) when `sequencer_feed`."""

    spot: Fraction
    cash: TokenSpec
    underlying: TokenSpec
    feed_decimals: tuple[int, ...]
    sequencer_feed: bool


@dataclass(frozen=True)
class SourceSpec:
    feed: str
    heartbeat: int


@dataclass(frozen=True)
class OracleSpec:
    sources: tuple[SourceSpec, ...]  # public networks; mock feeds are added by the plan
    heartbeat: int  # heartbeat of each mock feed
    min_sources: int
    sequencer_feed: str | None  # public networks: Chainlink L2 uptime feed, or None
    grace_period: int
    grace_liquidation_buffer: int  # wad


@dataclass(frozen=True)
class VolSpec:
    vol_min: int
    vol_max: int
    max_change: int
    max_skew: int
    heartbeat: int
    stale_markup: int

    def args(self) -> tuple[int, ...]:
        return (
            self.vol_min,
            self.vol_max,
            self.max_change,
            self.max_skew,
            self.heartbeat,
            self.stale_markup,
        )


@dataclass(frozen=True)
class ModeSpec:
    k: int
    v: int
    a: int
    conf: int
    haircut: int

    def args(self) -> tuple[int, int, int, int, int]:
        return (self.k, self.v, self.a, self.conf, self.haircut)


@dataclass(frozen=True)
class GridSpec:
    n: int
    horizon: int
    u_min: int
    u_max: int
    tau_ref: int
    tau_floor: int
    v_max: int

    def args(self) -> tuple[int, ...]:
        return (
            self.n,
            self.horizon,
            self.u_min,
            self.u_max,
            self.tau_ref,
            self.tau_floor,
            self.v_max,
        )


@dataclass(frozen=True)
class RiskSpec:
    im: ModeSpec
    mm: ModeSpec
    grid: GridSpec
    ref_vol: int


@dataclass(frozen=True)
class LiquidatorSpec:
    d_start: int
    d_max: int
    duration: int
    fund_share: int
    buffer: int
    dust: int

    def args(self) -> tuple[int, ...]:
        return (self.d_start, self.d_max, self.duration, self.fund_share, self.buffer, self.dust)


@dataclass(frozen=True)
class DeployerSpec:
    """Who signs: an ape keystore alias (public networks) or a test account index (local)."""

    alias: str | None
    test_account: int | None


@dataclass(frozen=True)
class DeployConfig:
    source: str  # the file it came from, for messages
    deployer: DeployerSpec
    feeders: tuple[str, ...]  # extra VolOracle feeders (the deployer always is one)
    tokens: tuple[str, str] | None  # (cash, underlying) on public networks
    mocks: MockSpec | None
    oracle: OracleSpec
    vol: VolSpec
    risk: RiskSpec
    liquidator: LiquidatorSpec
    pools: tuple[PoolSpec, ...]


# ---------------------------------------------------------------------------------------------
# Reading


def config_path(ecosystem: str, network: str, directory: Path = CONFIG_DIR) -> Path:
    """The config file of a network: `<directory>/<ecosystem>-<network>.yaml`."""
    return directory / f"{ecosystem}-{network}.yaml"


def load_config(path: Path, env: dict[str, str] | None = None) -> DeployConfig:
    """Read, merge (`extends`), substitute environment variables and validate a config file."""
    environ = dict(os.environ) if env is None else env
    raw = _read_merged(Path(path), seen=())
    return parse_config(_substitute(raw, environ, str(path)), str(path))


def _read_merged(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path in seen:
        raise ConfigError(f"{path}: circular 'extends'")
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: 'extends' must be a file name")
    return _merge(_read_merged(path.parent / parent, (*seen, path)), data)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _substitute(value: Any, env: dict[str, str], source: str) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, env, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, source) for v in value]
    if not isinstance(value, str):
        return value

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{source}: environment variable {name} is not set")

    return _ENV.sub(repl, value)


# ---------------------------------------------------------------------------------------------
# Validation


class _Reader:
    """Typed access to a nested mapping with one-line errors naming the key path."""

    def __init__(self, data: Any, source: str, path: str = "") -> None:
        self.data = data
        self.source = source
        self.path = path

    def fail(self, key: str, message: str) -> ConfigError:
        where = f"{self.path}.{key}" if self.path else key
        return ConfigError(f"{self.source}: {where}: {message}")

    def has(self, key: str) -> bool:
        return isinstance(self.data, dict) and self.data.get(key) is not None

    def sub(self, key: str, required: bool = True) -> _Reader:
        value = self.data.get(key) if isinstance(self.data, dict) else None
        if value is None:
            if required:
                raise self.fail(key, "missing")
            value = {}
        if not isinstance(value, dict):
            raise self.fail(key, "expected a mapping")
        return _Reader(value, self.source, f"{self.path}.{key}" if self.path else key)

    def raw(self, key: str, default: Any = ...) -> Any:
        value = self.data.get(key) if isinstance(self.data, dict) else None
        if value is None:
            if default is ...:
                raise self.fail(key, "missing")
            return default
        return value

    def fraction(self, key: str, default: Any = ..., lo: Fraction | None = None) -> Fraction:
        value = self.raw(key, default)
        if isinstance(value, bool):
            raise self.fail(key, f"expected a number, got {value!r}")
        try:
            number = Fraction(str(value).replace("_", ""))
        except (ValueError, ZeroDivisionError):
            raise self.fail(key, f"expected a number or a fraction a/b, got {value!r}") from None
        if lo is not None and number < lo:
            raise self.fail(key, f"must be at least {lo}, got {value!r}")
        return number

    def wad(self, key: str, default: Any = ...) -> int:
        """A non-negative number as a wad (floored)."""
        return int(self.fraction(key, default, lo=Fraction(0)) * WAD)

    def integer(self, key: str, default: Any = ..., lo: int = 0, hi: int | None = None) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.fail(key, f"expected an integer, got {value!r}")
        try:
            number = int(str(value).replace("_", ""))
        except ValueError:
            raise self.fail(key, f"expected an integer, got {value!r}") from None
        if number < lo or (hi is not None and number > hi):
            bound = f"in {lo}..{hi}" if hi is not None else f"at least {lo}"
            raise self.fail(key, f"must be {bound}, got {number}")
        return number

    def text(self, key: str, default: Any = ...) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def address(self, key: str, default: Any = ...) -> str | None:
        value = self.raw(key, default)
        if value is None or (value == "" and default is None):
            return None
        if not isinstance(value, str) or not _ADDRESS.match(value):
            raise self.fail(key, f"expected a 0x-prefixed 20-byte address, got {value!r}")
        return value

    def boolean(self, key: str, default: Any = ...) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def items(self, key: str) -> list[_Reader]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise self.fail(key, "expected a list")
        prefix = f"{self.path}.{key}" if self.path else key
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.fail(f"{key}[{i}]", "expected a mapping")
            out.append(_Reader(item, self.source, f"{prefix}[{i}]"))
        return out


KNOWN_KEYS = {
    "deployer",
    "feeders",
    "tokens",
    "mocks",
    "oracle",
    "vol",
    "risk",
    "liquidator",
    "pools",
    "keeper",  # the keeper bot's settings: validated by keeper.runtime.settings
}


def parse_config(data: dict[str, Any], source: str = "<config>") -> DeployConfig:
    """Validate a merged, substituted mapping into a DeployConfig."""
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}")
    r = _Reader(data, source)

    dep = r.sub("deployer", required=False)
    alias = dep.text("alias") if dep.has("alias") else None
    index = dep.integer("test_account", lo=0, hi=9) if dep.has("test_account") else None
    if alias is None and index is None:
        raise r.fail("deployer", "needs 'alias' (an ape keystore account) or 'test_account'")
    deployer = DeployerSpec(alias=alias, test_account=index)

    feeders_raw = r.raw("feeders", [])
    if not isinstance(feeders_raw, list):
        raise r.fail("feeders", "expected a list of addresses")
    feeders = tuple(
        str(_Reader({"a": f}, source, f"feeders[{i}]").address("a"))
        for i, f in enumerate(feeders_raw)
    )

    mocks = None
    if r.has("mocks"):
        m = r.sub("mocks")

        def token(key: str, name: str, symbol: str, decimals: int) -> TokenSpec:
            t = m.sub(key, required=False)
            return TokenSpec(
                name=t.text("name", name),
                symbol=t.text("symbol", symbol),
                decimals=t.integer("decimals", decimals, lo=0, hi=18),
            )

        decimals = m.raw("feed_decimals", [8, 18, 6])
        if not isinstance(decimals, list) or not decimals:
            raise m.fail("feed_decimals", "expected a non-empty list of integers")
        feed_decimals = tuple(
            _Reader({"d": d}, source, f"mocks.feed_decimals[{i}]").integer("d", lo=0, hi=18)
            for i, d in enumerate(decimals)
        )
        mocks = MockSpec(
            spot=m.fraction("spot", lo=Fraction(1, 10**6)),
            cash=token("cash", "USD Coin", "USDC", 6),
            underlying=token("underlying", "Wrapped Ether", "WETH", 18),
            feed_decimals=feed_decimals,
            sequencer_feed=m.boolean("sequencer_feed", True),
        )

    tokens = None
    if r.has("tokens"):
        t = r.sub("tokens")
        cash, underlying = t.address("cash"), t.address("underlying")
        assert cash is not None and underlying is not None
        tokens = (cash, underlying)
    if (mocks is None) == (tokens is None):
        raise ConfigError(
            f"{source}: give exactly one of 'mocks' (local networks) and 'tokens' (existing tokens)"
        )

    o = r.sub("oracle")
    sources = tuple(
        SourceSpec(feed=str(s.address("feed")), heartbeat=s.integer("heartbeat", lo=1, hi=172_800))
        for s in o.items("sources")
    )
    if mocks is None and not sources:
        raise o.fail("sources", "a network without mocks needs at least one price feed")
    if mocks is not None and sources:
        raise o.fail("sources", "give feeds either here or as mocks, not both")
    n_sources = len(sources) if mocks is None else len(mocks.feed_decimals)
    oracle = OracleSpec(
        sources=sources,
        heartbeat=o.integer("heartbeat", 3600, lo=1, hi=172_800),
        min_sources=o.integer("min_sources", lo=1, hi=n_sources),
        sequencer_feed=o.address("sequencer_feed", None),
        grace_period=o.integer("grace_period", 3600, lo=0, hi=86_400),
        grace_liquidation_buffer=o.wad("grace_liquidation_buffer", 0),
    )
    if mocks is not None and oracle.sequencer_feed is not None:
        raise o.fail("sequencer_feed", "with mocks the sequencer feed is a mock: leave it out")

    v = r.sub("vol")
    vol = VolSpec(
        vol_min=v.wad("vol_min"),
        vol_max=v.wad("vol_max"),
        max_change=v.wad("max_change"),
        max_skew=v.wad("max_skew"),
        heartbeat=v.integer("heartbeat", lo=1, hi=86_400),
        stale_markup=v.wad("stale_markup"),
    )
    if not 0 < vol.vol_min <= vol.vol_max:
        raise v.fail("vol_min", "need 0 < vol_min <= vol_max")

    k = r.sub("risk")

    def mode(key: str) -> ModeSpec:
        s = k.sub(key)
        return ModeSpec(
            k=s.wad("k"), v=s.wad("v"), a=s.wad("a"), conf=s.wad("conf"), haircut=s.wad("haircut")
        )

    g = k.sub("grid")
    grid = GridSpec(
        n=g.integer("n", lo=1, hi=10),
        horizon=g.integer("horizon", lo=3600, hi=30 * 86_400),
        u_min=g.wad("u_min"),
        u_max=g.wad("u_max"),
        tau_ref=g.wad("tau_ref"),
        tau_floor=g.wad("tau_floor"),
        v_max=g.wad("v_max"),
    )
    risk = RiskSpec(im=mode("im"), mm=mode("mm"), grid=grid, ref_vol=k.wad("ref_vol"))
    for name in ("k", "v", "a", "conf", "haircut"):
        if getattr(risk.im, name) < getattr(risk.mm, name):
            raise k.fail(f"im.{name}", "must be at least mm's (IM is the stricter mode)")

    q = r.sub("liquidator")
    liquidator = LiquidatorSpec(
        d_start=q.wad("d_start"),
        d_max=q.wad("d_max"),
        duration=q.integer("duration", lo=1),
        fund_share=q.wad("fund_share"),
        buffer=q.wad("buffer"),
        dust=q.wad("dust"),
    )
    if liquidator.d_start > liquidator.d_max:
        raise q.fail("d_start", "must not exceed d_max")

    pools = []
    for p in r.items("pools"):
        depth = p.fraction("depth", 0, lo=Fraction(0))
        if depth and mocks is None:
            raise p.fail("depth", "pools are seeded only on local networks (mocks)")
        pools.append(PoolSpec(fee_bps=p.integer("fee_bps", lo=0, hi=1000), depth=depth))
    names = [p.name for p in pools]
    if len(set(names)) != len(names):
        raise r.fail("pools", "two pools with the same fee")

    return DeployConfig(
        source=source,
        deployer=deployer,
        feeders=feeders,
        tokens=tokens,
        mocks=mocks,
        oracle=oracle,
        vol=vol,
        risk=risk,
        liquidator=liquidator,
        pools=tuple(pools),
    )
