"""Per-network deployment config: `deploy/networks/<ecosystem>-<network>.yaml` (pure, no I/O
beyond reading the file).

A file describes what to deploy and every constructor parameter, in human units: fractions such
as `0.05` or `1/12` become wads exactly (floored), durations are seconds, fees basis points.
`${VAR}` and `${VAR:-default}` in a string value are read from the environment (RPC URLs,
account aliases), so nothing secret lives in the file. `extends: <file>` loads another file of
the same folder first and merges this one over it (mappings key by key, lists replaced).

The schema is the pydantic models below, each with `extra="forbid"`: an unknown key at any
depth (`oracle.grace_periode`, `pools[0].depht`) is an error, never a silently used default.

Two kinds of network:
- local (`mocks:` present): the deployer also creates the cash and underlying tokens, mock price
  feeds, a mock sequencer-uptime feed and pools with liquidity. Only allowed on local networks
  (checked by `kappa_ops.plan`).
- public (`tokens:` and `oracle.sources:` present): existing tokens and Chainlink-style feeds;
  pools are deployed empty.

Every error is a `ConfigError` with one line: `<file>: <key.path>: <message>`.
"""

from __future__ import annotations

import difflib
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

WAD = 10**18
ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "deploy" / "networks"
UNLIMITED = 2**256 - 1
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class ConfigError(ValueError):
    """A config file that cannot be used; the message is one line."""


# ---------------------------------------------------------------------------------------------
# Field types


def _fraction(value: Any) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Fraction):
        raise ValueError(f"expected a number or a fraction a/b, got {value!r}")
    try:
        number = Fraction(str(value).replace("_", "").strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"expected a number or a fraction a/b, got {value!r}") from None
    if number < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return number


def _wad(value: Any) -> int:
    return int(_fraction(value) * WAD)


def _bounded_wad(low: str, high: str, step: str | None = None, unit: str = "") -> Any:
    """A wad in [low, high] (human units) and, with `step`, a whole multiple of it; the error
    names the bounds in the config's units."""
    lo, hi = Fraction(low), Fraction(high)
    grain = Fraction(step) if step is not None else None

    def check(value: Any) -> int:
        number = _fraction(value)
        if not lo <= number <= hi:
            raise ValueError(f"must be in [{low}, {high}]{unit}, got {value!r}")
        if grain is not None and number % grain:
            raise ValueError(f"must be a whole multiple of {step}, got {value!r}")
        return int(number * WAD)

    return BeforeValidator(check)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected an integer, got {value!r}")
    try:
        return int(str(value).replace("_", "").strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None


def _address(value: Any) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValueError(f"expected a 0x-prefixed 20-byte address, got {value!r}")
    return value


def _optional_address(value: Any) -> str | None:
    return None if value is None or value == "" else _address(value)


Num = Annotated[Fraction, BeforeValidator(_fraction)]  # a non-negative exact number
Wad = Annotated[int, BeforeValidator(_wad)]  # a non-negative number as a wad (floored)
Int = Annotated[int, BeforeValidator(_integer)]
Address = Annotated[str, BeforeValidator(_address)]
OptionalAddress = Annotated[str | None, BeforeValidator(_optional_address)]
Text = Annotated[str, Field(min_length=1)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    def args(self) -> tuple[Any, ...]:
        """The fields in declaration order: a contract's constructor or setter arguments
        (VolSpec, ModeSpec, GridSpec, PerpSpec and LiquidatorSpec declare them in the
        contracts' order)."""
        return tuple(getattr(self, name) for name in type(self).model_fields)


# ---------------------------------------------------------------------------------------------
# Schema


class DeployerSpec(Spec):
    """Who signs: an ape keystore alias (public networks) or a test account index (local).
    `ape run deploy --account` overrides both."""

    alias: Text | None = None
    test_account: Annotated[Int, Field(ge=0, le=9)] | None = None


class TokenSpec(Spec):
    name: Text
    symbol: Text
    decimals: Annotated[Int, Field(ge=0, le=18)]


class TokensSpec(Spec):
    """Existing tokens (public networks)."""

    cash: Address
    underlying: Address


class MockSpec(Spec):
    """Local networks only: tokens, `len(feed_decimals)` mock ETH/USD feeds at `spot`, and a
    mock sequencer-uptime feed (up since well before the grace period) when `sequencer_feed`."""

    spot: Num
    cash: TokenSpec = TokenSpec(name="USD Coin", symbol="USDC", decimals=6)
    underlying: TokenSpec = TokenSpec(name="Wrapped Ether", symbol="WETH", decimals=18)
    feed_decimals: Annotated[tuple[Annotated[Int, Field(ge=0, le=18)], ...], Field(min_length=1)]
    sequencer_feed: bool = True


class SourceSpec(Spec):
    feed: Address
    heartbeat: Annotated[Int, Field(ge=1, le=172_800)]


class OracleSpec(Spec):
    sources: tuple[SourceSpec, ...] = ()  # public networks; mock feeds are added by the plan
    heartbeat: Annotated[Int, Field(ge=1, le=172_800)] = 3600  # heartbeat of each mock feed
    min_sources: Annotated[Int, Field(ge=1)]
    sequencer_feed: OptionalAddress = None  # public networks: Chainlink L2 uptime feed
    grace_period: Annotated[Int, Field(ge=0, le=86_400)] = 3600
    grace_liquidation_buffer: Wad = 0
    # Settlement: how long after an expiry a source may take to publish its first round (read
    # by the contracts that support it; accepted and reported otherwise).
    settlement_timeout: Annotated[Int, Field(ge=0)] | None = None


class VolSpec(Spec):
    vol_min: Wad
    vol_max: Wad
    max_change: Wad
    max_skew: Wad
    heartbeat: Annotated[Int, Field(ge=1, le=86_400)]
    stale_markup: Wad


class ModeSpec(Spec):
    """A margin mode (risk.Mode, in the contract's order): spot-shock multiplier k, vol shock v,
    short-option contingency a, confidence contingency conf, underlying haircut, and the perp
    contingency a_perp (in [0, 0.2] in whole basis points; docs/margin_model.md)."""

    k: Wad
    v: Wad
    a: Wad
    conf: Wad
    haircut: Wad
    a_perp: Annotated[int, _bounded_wad("0", "0.2", "0.0001")]


class GridSpec(Spec):
    n: Annotated[Int, Field(ge=1, le=10)]
    horizon: Annotated[Int, Field(ge=3600, le=30 * 86_400)]
    u_min: Wad
    u_max: Wad
    tau_ref: Wad
    tau_floor: Wad
    v_max: Wad


class CapsSpec(Spec):
    """Supply caps on total deposits in token units (MarginEngine.set_caps); absent: none."""

    cash: Wad | None = None
    underlying: Wad | None = None

    def args(self) -> tuple[int, int]:
        return (
            UNLIMITED if self.cash is None else self.cash,
            UNLIMITED if self.underlying is None else self.underlying,
        )


class InterestSpec(Spec):
    """The cash pool's interest (MarginEngine.set_interest_params; bounds and meaning in
    docs/margin.md "Cash and interest"): the borrow rate base + slope1 min(U, kink) + slope2
    max(U - kink, 0) a year, the reserve factor paid to the insurance fund, and the utilization
    cap on new borrowing (1 - cap of the supply stays withdrawable). The defaults are a
    stablecoin market's (Aave-like): 0%, 4% at the kink, +75% above it, kink 80%, reserve 10%,
    cap 90%."""

    base: Wad = 0
    slope1: Wad = 4 * 10**16
    slope2: Wad = 75 * 10**16
    kink: Wad = 8 * 10**17
    reserve_factor: Wad = 10**17
    utilization_cap: Wad = 9 * 10**17


class RiskSpec(Spec):
    im: ModeSpec
    mm: ModeSpec
    grid: GridSpec
    ref_vol: Wad
    max_positions: Annotated[Int, Field(ge=1, le=32)] = 16
    caps: CapsSpec = CapsSpec()
    interest: InterestSpec = InterestSpec()


class PerpSpec(Spec):
    """The perpetual future (PerpBook.list_perp, and set_params to change it; docs/perps.md):
    the fill band around the index (whole basis points), the mark EMA's half-life in seconds,
    the hours over which funding closes the premium, and the largest funding rate an hour
    (whole millionths). The bounds are the contract's."""

    band: Annotated[int, _bounded_wad("0.001", "0.2", "0.0001")]
    half_life: Annotated[Int, Field(ge=60, le=86_400)]
    convergence_hours: Annotated[Int, Field(ge=1, le=168)]
    max_rate: Annotated[int, _bounded_wad("0", "0.01", "0.000001", " an hour")]


class LiquidatorSpec(Spec):
    d_start: Wad
    d_max: Wad
    duration: Annotated[Int, Field(ge=1)]
    fund_share: Wad
    buffer: Wad
    dust: Wad


class PoolSpec(Spec):
    """A ConstantProductPool (underlying/cash) with `fee_bps`; on local networks it is seeded
    with `depth` units of underlying and `depth * spot` of cash."""

    fee_bps: Annotated[Int, Field(ge=0, le=1000)]
    depth: Num = Fraction(0)

    @property
    def name(self) -> str:
        return f"pool_{self.fee_bps}"


class DeployConfig(Spec):
    source: str = "<config>"  # the file it came from, for messages
    deployer: DeployerSpec = DeployerSpec()
    feeders: tuple[Address, ...] = ()  # extra VolOracle feeders (the deployer always is one)
    tokens: TokensSpec | None = None
    mocks: MockSpec | None = None
    oracle: OracleSpec
    vol: VolSpec
    risk: RiskSpec
    perp: PerpSpec
    liquidator: LiquidatorSpec
    pools: tuple[PoolSpec, ...] = ()
    # The keeper's settings: validated by keeper/runtime when the bot starts, opaque here.
    keeper: dict[str, Any] | None = None


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
        raise ConfigError(f"{path}: extends: must be a file name")
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
        if env.get(name, "") != "":
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{source}: environment variable {name} is not set")

    return _ENV.sub(repl, value)


# ---------------------------------------------------------------------------------------------
# Validation


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-", "nullable", "tuple[", "str", "int")):
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the schema allows where `loc` (ending in the unknown key) points."""
    model: Any = DeployConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
    return list(getattr(model, "model_fields", {}))


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _message(error: Any) -> str:
    kind, loc = error["type"], tuple(error["loc"])
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _known_keys(loc), n=1)
        return "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return "missing"
    text = str(error["msg"]).removeprefix("Value error, ")
    if kind.startswith(("greater_than", "less_than")):
        text += f", got {error.get('input')!r}"
    return text


def parse_config(data: dict[str, Any], source: str = "<config>") -> DeployConfig:
    """Validate a merged, substituted mapping into a DeployConfig."""
    try:
        config = DeployConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(
            f"{source}: {_key_path(tuple(first['loc']))}: {_message(first)}{more}"
        ) from None
    _cross_checks(config, source)
    return config


def _cross_checks(c: DeployConfig, source: str) -> None:
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {message}")

    if c.deployer.alias is None and c.deployer.test_account is None:
        raise fail("deployer", "needs 'alias' (an ape keystore account) or 'test_account'")
    if (c.mocks is None) == (c.tokens is None):
        raise ConfigError(
            f"{source}: give exactly one of 'mocks' (local networks) and 'tokens' (existing tokens)"
        )
    o = c.oracle
    if c.mocks is None and not o.sources:
        raise fail("oracle.sources", "a network without mocks needs at least one price feed")
    if c.mocks is not None and o.sources:
        raise fail("oracle.sources", "give feeds either here or as mocks, not both")
    if c.mocks is not None and o.sequencer_feed is not None:
        raise fail("oracle.sequencer_feed", "with mocks the sequencer feed is a mock: leave it out")
    n_sources = len(o.sources) if c.mocks is None else len(c.mocks.feed_decimals)
    if o.min_sources > n_sources:
        raise fail("oracle.min_sources", f"must be in 1..{n_sources}, got {o.min_sources}")
    if not 0 < c.vol.vol_min <= c.vol.vol_max:
        raise fail("vol.vol_min", "need 0 < vol_min <= vol_max")
    for name in type(c.risk.im).model_fields:
        if getattr(c.risk.im, name) < getattr(c.risk.mm, name):
            raise fail(f"risk.im.{name}", "must be at least mm's (IM is the stricter mode)")
    if c.liquidator.d_start > c.liquidator.d_max:
        raise fail("liquidator.d_start", "must not exceed d_max")
    for i, pool in enumerate(c.pools):
        if pool.depth and c.mocks is None:
            raise fail(f"pools[{i}].depth", "pools are seeded only on local networks (mocks)")
    names = [p.name for p in c.pools]
    if len(set(names)) != len(names):
        raise fail("pools", "two pools with the same fee")
