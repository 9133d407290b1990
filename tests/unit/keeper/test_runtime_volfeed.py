"""The vol feeder's decisions (keeper.runtime.volfeed), without a node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keeper.runtime.settings import KeeperConfigError, parse_keeper
from keeper.runtime.volfeed import (
    VolEntry,
    VolLimits,
    VolSourceError,
    VolTarget,
    parse_source,
    plan_vol_updates,
    read_source,
    to_wad,
    write_source,
)

WAD = 10**18
LIMITS = VolLimits(vol_min=WAD // 20, vol_max=5 * WAD, max_change=WAD // 2, max_skew=2 * WAD)
NOW = 1_800_000_000
E1, E2, E3 = NOW + 86_400, NOW + 10 * 86_400, NOW + 31 * 86_400
BAND = to_wad(0.005)


def plan(targets, entries, now=NOW, refresh=3600, max_updates=16, busy=frozenset()):
    return plan_vol_updates(targets, entries, now, LIMITS, BAND, refresh, max_updates, busy)


def test_to_wad_is_exact_for_decimal_quotes():
    assert to_wad(0.65) == 650_000_000_000_000_000
    assert to_wad(-0.15) == -150_000_000_000_000_000
    assert to_wad(0.1 + 0.2) == 300_000_000_000_000_000  # 0.30000000000000004 rounds to 1e-9


def test_no_entry_is_posted_and_a_past_expiry_is_not():
    targets = [VolTarget(NOW, to_wad(0.6), 0), VolTarget(E1, to_wad(0.6), to_wad(-0.1))]
    out = plan(targets, {})
    assert [(u.expiry, u.atm, u.skew, u.reason) for u in out] == [
        (E1, to_wad(0.6), to_wad(-0.1), "no entry")
    ]


def test_deadband_on_atm_and_skew():
    entry = VolEntry(to_wad(0.60), to_wad(-0.10), NOW - 10)
    inside = [VolTarget(E1, to_wad(0.604), to_wad(-0.104))]
    assert plan(inside, {E1: entry}) == []
    atm_out = [VolTarget(E1, to_wad(0.606), to_wad(-0.10))]
    assert [u.atm for u in plan(atm_out, {E1: entry})] == [to_wad(0.606)]
    skew_out = [VolTarget(E1, to_wad(0.60), to_wad(-0.106))]
    assert [u.skew for u in plan(skew_out, {E1: entry})] == [to_wad(-0.106)]


def test_an_old_entry_is_refreshed_even_inside_the_deadband():
    entry = VolEntry(to_wad(0.60), 0, NOW - 3600)
    out = plan([VolTarget(E1, to_wad(0.601), 0)], {E1: entry})
    assert [(u.atm, u.reason) for u in out] == [(to_wad(0.601), "refresh")]
    assert plan([VolTarget(E1, to_wad(0.601), 0)], {E1: VolEntry(to_wad(0.6), 0, NOW - 3599)}) == []


def test_a_move_beyond_max_change_is_walked_in_steps():
    entry = VolEntry(to_wad(0.6), 0, NOW)
    out = plan([VolTarget(E1, to_wad(1.8), 0)], {E1: entry})
    assert [u.atm for u in out] == [to_wad(1.1)]
    assert "max_change" in out[0].reason
    out = plan([VolTarget(E1, to_wad(1.8), 0)], {E1: VolEntry(to_wad(1.1), 0, NOW)})
    assert [u.atm for u in out] == [to_wad(1.6)]
    out = plan([VolTarget(E1, to_wad(1.8), 0)], {E1: VolEntry(to_wad(1.6), 0, NOW)})
    assert [u.atm for u in out] == [to_wad(1.8)]
    down = plan([VolTarget(E1, to_wad(0.05), 0)], {E1: VolEntry(to_wad(1.6), 0, NOW)})
    assert [u.atm for u in down] == [to_wad(1.1)]


def test_targets_are_clamped_to_the_oracle_bounds():
    out = plan([VolTarget(E1, to_wad(0.01), to_wad(-3.0)), VolTarget(E2, to_wad(9.0), 3 * WAD)], {})
    assert {(u.expiry, u.atm, u.skew) for u in out} == {
        (E1, LIMITS.vol_min, -LIMITS.max_skew),
        (E2, LIMITS.vol_max, LIMITS.max_skew),
    }
    # The step is measured from the entry clamped to the bounds, as the contract does.
    out = plan([VolTarget(E1, to_wad(0.6), 0)], {E1: VolEntry(to_wad(7.0), 0, NOW)})
    assert [u.atm for u in out] == [LIMITS.vol_max - LIMITS.max_change]


def test_in_flight_expiries_wait_and_the_largest_gaps_go_first():
    entries = {e: VolEntry(to_wad(0.6), 0, NOW) for e in (E1, E2, E3)}
    targets = [
        VolTarget(E1, to_wad(0.61), 0),
        VolTarget(E2, to_wad(0.70), 0),
        VolTarget(E3, to_wad(0.65), 0),
    ]
    assert [u.expiry for u in plan(targets, entries, max_updates=2)] == [E2, E3]
    assert [u.expiry for u in plan(targets, entries, busy=frozenset({E2}))] == [E3, E1]


def test_parse_source_checks_age_and_shape():
    doc = {"updated": 1000, "entries": [{"expiry": E2, "atm": 0.7, "skew": -0.2}]}
    doc["entries"].append({"expiry": E1, "atm": 0.6, "skew": 0})
    assert parse_source(doc, now=1500, max_age_seconds=600) == [
        VolTarget(E1, to_wad(0.6), 0),
        VolTarget(E2, to_wad(0.7), to_wad(-0.2)),
    ]
    with pytest.raises(VolSourceError, match="stale: updated 601 s ago"):
        parse_source(doc, now=1601, max_age_seconds=600)
    with pytest.raises(VolSourceError, match=r"`updated`"):
        parse_source({"entries": []}, now=0, max_age_seconds=1)
    with pytest.raises(VolSourceError, match=r"entries\[0\]: needs"):
        parse_source({"updated": 0, "entries": [{"expiry": E1}]}, now=0, max_age_seconds=1)
    with pytest.raises(VolSourceError, match=r"entries\[0\]: atm must be > 0"):
        bad = {"updated": 0, "entries": [{"expiry": E1, "atm": 0, "skew": 0}]}
        parse_source(bad, now=0, max_age_seconds=1)
    with pytest.raises(VolSourceError, match=r"`entries` list"):
        parse_source([], now=0, max_age_seconds=1)


def test_file_source_round_trip_and_errors(tmp_path: Path):
    path = tmp_path / "vol.json"
    write_source(path, [(E1, 0.65, -0.15)], updated=123.0)
    assert json.loads(path.read_text()) == {
        "updated": 123.0,
        "entries": [{"expiry": E1, "atm": 0.65, "skew": -0.15}],
    }
    assert read_source("file", str(path), 1.0)["updated"] == 123.0
    with pytest.raises(VolSourceError, match="FileNotFoundError"):
        read_source("file", str(tmp_path / "missing.json"), 1.0)
    path.write_text("{not json")
    with pytest.raises(VolSourceError, match="JSONDecodeError"):
        read_source("file", str(path), 1.0)


def test_settings_need_a_source_for_the_role():
    with pytest.raises(KeeperConfigError, match=r"roles\.vol_feeder needs a `vol_feed` source"):
        parse_keeper({"roles": {"vol_feeder": True}}, "x.yaml")
    with pytest.raises(KeeperConfigError, match=r"a file source needs `path`"):
        parse_keeper({"vol_feed": {"source": {"kind": "file"}}}, "x.yaml")
    with pytest.raises(KeeperConfigError, match=r"keeper\.vol_feed\.source\.kind"):
        parse_keeper({"vol_feed": {"source": {"kind": "ftp", "url": "x"}}}, "x.yaml")
    with pytest.raises(KeeperConfigError, match=r"http:// or https://"):
        parse_keeper({"vol_feed": {"source": {"kind": "http", "url": "ftp://x"}}}, "x.yaml")
    s = parse_keeper(
        {
            "roles": {"vol_feeder": True},
            "vol_feed": {"source": {"kind": "http", "url": "http://h/v"}},
        }
    )
    assert s.vol_feed is not None and s.vol_feed.deadband == 0.005
