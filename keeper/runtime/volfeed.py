"""The vol feeder role: push a configured source's ATM vol and skew to the VolOracle.

The source (the `vol_feed.source` key of the network YAML) is a JSON document, read from a
file or fetched over HTTP each block:

    {"updated": 1767225600,                       # unix seconds (wall clock) of the values
     "entries": [{"expiry": 1767254400, "atm": 0.65, "skew": -0.15}, ...]}

`atm` is the ATM vol and `skew` d(sigma)/d(ln(K/F)), both as fractions; `updated` says how old
the values are: a source older than `max_source_age_seconds` is refused (the feeder then
posts nothing and the entries age on chain until the VolOracle's heartbeat marks them stale,
which the margin model prices; a feeder must never refresh values nobody vouches for). On
local chains the crash demo writes its vol path to such a file (kappa_ops/demo.py).

`plan_vol_updates` (pure) decides, per expiry of the source, in integer wads as the contract
compares them:
- expiries at or before the current block time are skipped ("vol: expiry in the past");
- the target is clamped to the oracle's bounds ([vol_min, vol_max], |skew| <= max_skew);
- an update is due when there is no entry yet, when ATM or skew differs from the entry by
  more than `deadband`, or when the entry is `refresh_seconds` old (kept fresh before the
  heartbeat);
- one update moves ATM at most `max_change` from the entry (the oracle's bound on one update):
  a larger move is walked over several blocks, each step `max_change`;
- at most `max_expiries_per_block` updates, largest ATM gap first.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WAD = 10**18
# Source values are rounded to 1e-9 (far below any vol quote's precision) before the wad
# conversion, so that the same decimal always gives the same integer.
_DIGITS = 9


class VolSourceError(ValueError):
    """A source that cannot be used now; the message is one line."""


@dataclass(frozen=True)
class VolTarget:
    expiry: int
    atm: int  # wad
    skew: int  # signed wad


@dataclass(frozen=True)
class VolEntry:
    """The VolOracle's entry of an expiry (atm == 0: none)."""

    atm: int
    skew: int
    updated_at: int


@dataclass(frozen=True)
class VolLimits:
    vol_min: int
    vol_max: int
    max_change: int
    max_skew: int


@dataclass(frozen=True)
class VolUpdate:
    expiry: int
    atm: int
    skew: int
    reason: str


def to_wad(x: float) -> int:
    return int(round(x, _DIGITS) * 10**_DIGITS) * 10 ** (18 - _DIGITS)


def parse_source(data: Any, now: float, max_age_seconds: float) -> list[VolTarget]:
    """The targets of a source document (see the module); VolSourceError if it is malformed
    or older than `max_age_seconds` at wall-clock time `now`."""
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise VolSourceError("expected an object with an `entries` list")
    updated = data.get("updated")
    if not isinstance(updated, int | float) or isinstance(updated, bool):
        raise VolSourceError("`updated` (unix seconds) missing")
    age = now - float(updated)
    if age > max_age_seconds:
        raise VolSourceError(f"stale: updated {age:.0f} s ago (max {max_age_seconds:.0f})")
    out: dict[int, VolTarget] = {}
    for k, e in enumerate(data["entries"]):
        try:
            expiry, atm, skew = int(e["expiry"]), float(e["atm"]), float(e["skew"])
        except (KeyError, TypeError, ValueError):
            raise VolSourceError(f"entries[{k}]: needs expiry, atm and skew numbers") from None
        if not (atm > 0 and abs(skew) < 1e3 and expiry > 0):
            raise VolSourceError(f"entries[{k}]: atm must be > 0, expiry > 0")
        out[expiry] = VolTarget(expiry, to_wad(atm), to_wad(skew))
    return [out[e] for e in sorted(out)]


def plan_vol_updates(
    targets: Sequence[VolTarget],
    entries: Mapping[int, VolEntry],
    now: int,
    limits: VolLimits,
    deadband: int,
    refresh_seconds: int,
    max_updates: int,
    in_flight: frozenset[int] = frozenset(),
) -> list[VolUpdate]:
    """The VolOracle updates for this block (see the module). `now` is the block time,
    `deadband` a wad, `in_flight` expiries whose update is not mined yet."""
    due: list[tuple[int, VolUpdate]] = []
    for t in targets:
        if t.expiry <= now or t.expiry in in_flight:
            continue
        atm = min(max(t.atm, limits.vol_min), limits.vol_max)
        skew = min(max(t.skew, -limits.max_skew), limits.max_skew)
        entry = entries.get(t.expiry)
        if entry is None or entry.atm == 0:
            due.append((abs(atm), VolUpdate(t.expiry, atm, skew, "no entry")))
            continue
        previous = min(max(entry.atm, limits.vol_min), limits.vol_max)
        gap = atm - previous
        moved = abs(gap) > deadband or abs(skew - entry.skew) > deadband
        old = now - entry.updated_at >= refresh_seconds
        if not (moved or old):
            continue
        reason = f"atm {previous / WAD:.4f} -> {atm / WAD:.4f}" if moved else "refresh"
        if abs(gap) > limits.max_change:
            atm = previous + (limits.max_change if gap > 0 else -limits.max_change)
            reason += f" (step {atm / WAD:.4f}, max_change)"
        due.append((abs(gap), VolUpdate(t.expiry, atm, skew, reason)))
    due.sort(key=lambda x: -x[0])
    return [u for _, u in due[:max_updates]]


def read_source(kind: str, where: str, timeout: float) -> Any:
    """The source document: a JSON file or an HTTP GET; VolSourceError on any failure."""
    try:
        if kind == "file":
            return json.loads(Path(where).read_text())
        req = urllib.request.Request(where, headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError) as exc:
        raise VolSourceError(f"{where}: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def write_source(path: Path, entries: Sequence[tuple[int, float, float]], updated: float) -> None:
    """Write a file source atomically (the demo's vol path): [(expiry, atm, skew)]."""
    doc = {
        "updated": round(updated, 3),
        "entries": [{"expiry": int(e), "atm": float(a), "skew": float(s)} for e, a, s in entries],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)
