"""The keeper's settings: the `keeper:` key of deploy/networks/<ecosystem>-<network>.yaml.

Validated with pydantic v2 (unknown keys are errors), and every problem is reported as one line
naming the file and the key path (`KeeperConfigError`). The same file's `extends:` and
`${VAR}` substitution apply (kappa_ops.config reads it). Every key has a default, so a file
without a `keeper:` key runs the monitor, liquidator and settler with conservative caps.

    keeper:
      dry_run: false              # simulate and log every action, never send
      roles: {monitor: true, monitor_greeks: true, liquidator: true, settler: true}
      confirmations: 0            # events are applied this many blocks behind the head
      backfill_chunk: 2000        # blocks per eth_getLogs request while catching up
      reprice_seconds: 60         # re-evaluate every account at least this often (time decay)
      checkpoint: null            # default .keeper/<ecosystem>-<network>.json
      checkpoint_blocks: 1        # write the checkpoint every N processed blocks
      reorg_snapshots: 8          # recent checkpoints kept in memory (each the checkpoint file's
                                  # size): a reorg rolls back to the newest still canonical
                                  # (0: rebuild from the deployment block)
      drift: {every_blocks: 20, sample: 8}
      tx: {max_fee_gwei: 5, max_priority_fee_gwei: 0.1, gas_limit: 3000000,
           replace_after_blocks: 3, bump_percent: 12.5, hourly_spend_cap_eth: 0.05}
      liquidation: {start_margin_usd: 0.001, min_profit_usd: 0, price_tolerance: 0.01,
                    max_bids_per_block: 8, end_at: im}
      settlement: {max_accounts_per_block: 16, perp_funding_usd: 500}
      hedge: {band: 0.02, slippage: 0.005, deadline_seconds: 600, min_gross: 0}   # roles.hedger
      shard: {index: 0, count: 1, takeover_blocks: null}   # keeper/runtime/sharding.py
      rpc: {backoff_initial_seconds: 1, backoff_max_seconds: 30}   # after RPC failures
      vol_feed:                   # roles.vol_feeder: push a vol source to the VolOracle
        source: {kind: file, path: .keeper/vol-source.json}   # or {kind: http, url: ...}
        deadband: 0.005           # post when ATM or skew differs from the chain by more
        refresh_seconds: 3600     # re-post an unchanged entry this often (freshness)
        max_source_age_seconds: 600
      metrics_port: null          # a Prometheus endpoint on this port when set
      health: {port: 8090, host: 127.0.0.1, max_lag_blocks: 3}   # GET /health (JSON)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class KeeperConfigError(ValueError):
    """A `keeper:` section that cannot be used; the message is one line."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Roles(_Model):
    monitor: bool = True
    monitor_greeks: bool = True  # account Greeks with every evaluation (the risk monitor)
    liquidator: bool = True
    settler: bool = True
    hedger: bool = False  # the accounts that made the signer their operator
    vol_feeder: bool = False  # push `vol_feed.source` to the VolOracle (the signer is a feeder)


class Drift(_Model):
    every_blocks: int = Field(20, ge=1)
    sample: int = Field(8, ge=0)


class TxSettings(_Model):
    max_fee_gwei: float = Field(5.0, gt=0)
    max_priority_fee_gwei: float = Field(0.1, ge=0)
    gas_limit: int = Field(3_000_000, ge=21_000, le=30_000_000)
    replace_after_blocks: int = Field(3, ge=1)
    bump_percent: float = Field(12.5, ge=10, le=200)
    hourly_spend_cap_eth: float = Field(0.05, ge=0)
    max_pending: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _tip_below_cap(self) -> TxSettings:
        if self.max_priority_fee_gwei > self.max_fee_gwei:
            raise ValueError("max_priority_fee_gwei must not exceed max_fee_gwei")
        return self


class LiquidationSettings(_Model):
    start_margin_usd: float = Field(0.001, ge=0)
    min_profit_usd: float = 0.0
    price_tolerance: float = Field(0.01, ge=0, le=1)
    max_bids_per_block: int = Field(8, ge=0)
    end_at: Literal["im", "mm"] = "im"


class HedgeSettings(_Model):
    band: float = Field(0.02, ge=0, lt=1)  # hedge when |net delta| / gross > band
    slippage: float = Field(0.005, ge=0, lt=0.05)  # min_out below the exact pool quote
    deadline_seconds: int = Field(600, ge=1)
    min_gross: float = Field(0.0, ge=0)  # ignore accounts with a smaller gross option size
    # Signed perp quotes (keeper/runtime/perp_quotes.py), a JSON file relative to the project
    # root; absent: hedge through the pools only. The perp's expected funding is priced over
    # `perp_holding_hours`.
    perp_quotes: str | None = None
    perp_holding_hours: float = Field(8.0, gt=0, le=24 * 30)


class SettlementSettings(_Model):
    max_accounts_per_block: int = Field(16, ge=0)
    # settle_perp for accounts whose unsettled funding is at least this many USD (either way):
    # the funding then sits in interest-bearing cash, and the payer's debt is visible as such.
    perp_funding_usd: float = Field(500.0, ge=0)


class ShardSettings(_Model):
    """Which share of the accounts this keeper acts on (keeper/runtime/sharding.py)."""

    index: int = Field(0, ge=0)
    count: int = Field(1, ge=1, le=64)
    takeover_blocks: int | None = Field(None, ge=1)  # None: workers of one bot, no takeover

    @model_validator(mode="after")
    def _index_below_count(self) -> ShardSettings:
        if self.index >= self.count:
            raise ValueError("index must be below count")
        return self


class RpcSettings(_Model):
    backoff_initial_seconds: float = Field(1.0, gt=0)
    backoff_max_seconds: float = Field(30.0, gt=0)


class VolSource(_Model):
    """Where the vol feeder reads its targets (keeper/runtime/volfeed.py has the format)."""

    kind: Literal["file", "http"]
    path: str | None = None  # kind file: relative to the repository root unless absolute
    url: str | None = None  # kind http: GET, JSON answer
    timeout_seconds: float = Field(2.0, gt=0, le=30)

    @model_validator(mode="after")
    def _where(self) -> VolSource:
        if self.kind == "file" and not self.path:
            raise ValueError("a file source needs `path`")
        if self.kind == "http" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("an http source needs an http:// or https:// `url`")
        return self


class VolFeedSettings(_Model):
    source: VolSource
    deadband: float = Field(0.005, ge=0, le=1)  # vol points (0.005 = half a vol point)
    refresh_seconds: int = Field(3600, ge=1)  # re-post unchanged entries this often
    max_source_age_seconds: int = Field(600, ge=1)  # older `updated`: the source is stale
    max_expiries_per_block: int = Field(16, ge=1)


class HealthSettings(_Model):
    port: int = Field(ge=1, le=65535)
    host: str = "127.0.0.1"
    max_lag_blocks: int = Field(3, ge=0)  # more blocks behind the head: degraded


class KeeperSettings(_Model):
    dry_run: bool = False
    roles: Roles = Roles()
    confirmations: int = Field(0, ge=0, le=64)
    backfill_chunk: int = Field(2000, ge=1)
    reprice_seconds: int = Field(60, ge=0)
    checkpoint: str | None = None
    checkpoint_blocks: int = Field(1, ge=1)
    reorg_snapshots: int = Field(8, ge=0, le=1024)
    shard_size: int = Field(1024, ge=1)
    drift: Drift = Drift()
    tx: TxSettings = TxSettings()
    liquidation: LiquidationSettings = LiquidationSettings()
    settlement: SettlementSettings = SettlementSettings()
    hedge: HedgeSettings = HedgeSettings()
    shard: ShardSettings = ShardSettings()
    rpc: RpcSettings = RpcSettings()
    vol_feed: VolFeedSettings | None = None
    metrics_port: int | None = Field(None, ge=1, le=65535)
    health: HealthSettings | None = None

    @model_validator(mode="after")
    def _vol_feeder_has_a_source(self) -> KeeperSettings:
        if self.roles.vol_feeder and self.vol_feed is None:
            raise ValueError("roles.vol_feeder needs a `vol_feed` source")
        return self

    def checkpoint_path(self, ecosystem: str, network: str, root: Path) -> Path:
        if self.checkpoint:
            path = Path(self.checkpoint)
            return path if path.is_absolute() else root / path
        return root / ".keeper" / f"{ecosystem}-{network}.json"


def parse_keeper(data: Any, source: str = "<config>") -> KeeperSettings:
    """Validate the `keeper:` mapping (None: every default); one-line KeeperConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise KeeperConfigError(f"{source}: keeper: expected a mapping")
    try:
        return KeeperSettings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in ("keeper", *err["loc"]))
        message = err["msg"].removeprefix("Value error, ")
        raise KeeperConfigError(f"{source}: {where}: {message}") from None


def load_keeper(path: Path, env: dict[str, str] | None = None) -> KeeperSettings:
    """The `keeper:` key of a network file (after `extends:` and `${VAR}` substitution)."""
    import os

    from kappa_ops.config import ConfigError, _read_merged, _substitute

    try:
        raw = _read_merged(Path(path), seen=())
        data = _substitute(raw.get("keeper"), dict(os.environ) if env is None else env, str(path))
    except ConfigError as exc:
        raise KeeperConfigError(str(exc)) from None
    return parse_keeper(data, str(path))
