"""Unit tests of contracts/oracle/VolOracle.vy.

Every test name contains "vol_oracle" (`pytest -k vol_oracle`). sigma() is checked exactly at
the money and on the clamps, and against mpmath off the money with the tolerance that follows
from wad.ln_wad's documented precision (see `ln_tolerance`).
"""

from __future__ import annotations

from typing import Any

import boa
import mpmath
import pytest

from tests import risk_inputs as R  # noqa: N812
from tests.conftest import deployer, events, load

VOL_ORACLE = "contracts/oracle/VolOracle.vy"
WAD = 10**18
ZERO = "0x" + "00" * 20
VOL_MIN = WAD // 20  # 5%
VOL_MAX = 3 * WAD  # 300%
MAX_CHANGE = WAD // 10  # 10 vol points per update
MAX_SKEW = 2 * WAD
HEARTBEAT = 3600
MARKUP = WAD // 2  # +50% when stale
DAY = 86400


@pytest.fixture
def feeder() -> str:
    return boa.env.generate_address()


@pytest.fixture
def vol(feeder: str) -> Any:
    oracle = deployer(VOL_ORACLE).deploy(VOL_MIN, VOL_MAX, MAX_CHANGE, MAX_SKEW, HEARTBEAT, MARKUP)
    oracle.add_feeder(feeder)
    return oracle


def push(vol: Any, feeder: str, expiry: int, atm: int, skew: int) -> None:
    with boa.env.prank(feeder):
        vol.update(expiry, atm, skew)


def ln_tolerance(skew: int) -> int:
    """|sigma - exact| bound off the money: ln(K/F) = -black76.log_moneyness(F, K), where
    ln_wad is within 2e-19 relative of ln(F*1e36/K / 1e18) (|.| <= 125, so <= 25 wei), the
    quotient's truncation adds below 1e-18 * K/F (< 1 wei here) and ln(1e18) is rounded (0.5
    wei): ln(K/F) is within 27 wei, which skew scales by |skew| / 1e18; the truncation adds 1."""
    return 27 * abs(skew) // WAD + 2


# ----------------------------------------------------------------------------------------------
# sigma()
# ----------------------------------------------------------------------------------------------


def test_vol_oracle_sigma_at_the_money_is_atm(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 30 * DAY
    push(vol, feeder, expiry, 6 * WAD // 10, -WAD // 4)
    for forward in (1, 3000 * WAD, 10**36):
        assert vol.sigma(expiry, forward, forward) == 6 * WAD // 10


@pytest.mark.parametrize("skew", [-WAD // 4, WAD // 3, MAX_SKEW, -MAX_SKEW])
@pytest.mark.parametrize("moneyness", ["0.8", "0.95", "1.05", "1.25"])
def test_vol_oracle_sigma_skew_matches_mpmath(
    vol: Any, feeder: str, skew: int, moneyness: str
) -> None:
    expiry = boa.env.timestamp + 30 * DAY
    atm = 6 * WAD // 10
    push(vol, feeder, expiry, atm, skew)
    forward = 3000 * WAD
    strike = int(mpmath.mpf(moneyness) * forward)
    with mpmath.workdps(50):
        exact = atm + mpmath.mpf(skew) * mpmath.log(mpmath.mpf(strike) / forward)
        exact = min(max(exact, VOL_MIN), VOL_MAX)
        assert abs(vol.sigma(expiry, strike, forward) - exact) <= ln_tolerance(skew)


def test_vol_oracle_sigma_skew_sign(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 30 * DAY
    push(vol, feeder, expiry, WAD // 2, -WAD // 5)
    # Negative skew: puts (low strikes) carry more vol than calls.
    low = vol.sigma(expiry, 2000 * WAD, 3000 * WAD)
    high = vol.sigma(expiry, 4000 * WAD, 3000 * WAD)
    assert low > WAD // 2 > high


def test_vol_oracle_sigma_clamps_to_bounds(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 30 * DAY
    push(vol, feeder, expiry, WAD // 2, MAX_SKEW)
    # ln(1e-6) * 2 = -27.6: far below vol_min; ln(1e6) * 2 = +27.6: far above vol_max.
    assert vol.sigma(expiry, WAD, 10**6 * WAD) == VOL_MIN
    assert vol.sigma(expiry, 10**6 * WAD, WAD) == VOL_MAX
    # The extremes of the price domain.
    assert vol.sigma(expiry, 1, 10**36) == VOL_MIN
    assert vol.sigma(expiry, 10**36, 1) == VOL_MAX


def test_vol_oracle_sigma_clamps_after_bounds_change(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 30 * DAY
    push(vol, feeder, expiry, WAD // 2, 0)
    vol.set_vol_bounds(WAD, 2 * WAD)
    assert vol.sigma(expiry, WAD, WAD) == WAD
    vol.set_vol_bounds(VOL_MIN, WAD // 4)
    assert vol.sigma(expiry, WAD, WAD) == WAD // 4


def test_vol_oracle_stale_entry_is_marked_up(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 30 * DAY
    push(vol, feeder, expiry, 6 * WAD // 10, -WAD // 4)
    fresh = vol.sigma(expiry, 2500 * WAD, 3000 * WAD)
    boa.env.time_travel(seconds=HEARTBEAT)
    assert vol.is_fresh(expiry) is True  # age == heartbeat: still fresh
    assert vol.sigma(expiry, 2500 * WAD, 3000 * WAD) == fresh
    boa.env.time_travel(seconds=1)
    assert vol.is_fresh(expiry) is False
    stale = vol.sigma(expiry, 2500 * WAD, 3000 * WAD)
    # fresh * 1.5, rounded up: conservative (higher) vol.
    assert stale == -(-fresh * (WAD + MARKUP) // WAD)
    assert stale > fresh
    assert vol.sigma(expiry, WAD, WAD) == 9 * WAD // 10


def test_vol_oracle_stale_entry_capped_at_vol_max(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 30 * DAY
    push(vol, feeder, expiry, 25 * WAD // 10, 0)
    boa.env.time_travel(seconds=HEARTBEAT + 1)
    assert vol.sigma(expiry, WAD, WAD) == VOL_MAX
    # A markup of 0 answers the fresh value (still flagged by is_fresh).
    vol.set_stale_markup(0)
    assert vol.sigma(expiry, WAD, WAD) == 25 * WAD // 10


def test_vol_oracle_stale_floor_value_is_marked_up(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 30 * DAY
    push(vol, feeder, expiry, WAD // 2, MAX_SKEW)
    boa.env.time_travel(seconds=HEARTBEAT + 1)
    # The smile is below vol_min here: the stale answer is vol_min * 1.5, never below fresh.
    assert vol.sigma(expiry, WAD, 10**6 * WAD) == VOL_MIN * 3 // 2


def test_vol_oracle_no_entry(vol: Any) -> None:
    expiry = boa.env.timestamp + 30 * DAY
    with boa.reverts("vol: no entry"):
        vol.sigma(expiry, WAD, WAD)
    assert vol.has_entry(expiry) is False
    assert vol.is_fresh(expiry) is False
    assert vol.entry(expiry) == (0, 0, 0)


def test_vol_oracle_sigma_domain_reverts(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 30 * DAY
    push(vol, feeder, expiry, WAD // 2, 0)
    with boa.reverts("vol: strike out of range"):
        vol.sigma(expiry, 0, WAD)
    with boa.reverts("vol: strike out of range"):
        vol.sigma(expiry, 10**36 + 1, WAD)
    with boa.reverts("vol: forward out of range"):
        vol.sigma(expiry, WAD, 0)
    with boa.reverts("vol: forward out of range"):
        vol.sigma(expiry, WAD, 10**36 + 1)


def test_vol_oracle_sigma_after_expiry_still_answers(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + HEARTBEAT // 2
    push(vol, feeder, expiry, WAD // 2, 0)
    boa.env.time_travel(seconds=HEARTBEAT // 2 + 1)
    assert vol.sigma(expiry, WAD, WAD) == WAD // 2


# ----------------------------------------------------------------------------------------------
# update()
# ----------------------------------------------------------------------------------------------


def test_vol_oracle_update_stores_and_logs(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 7 * DAY
    push(vol, feeder, expiry, 7 * WAD // 10, -MAX_SKEW)
    assert events(vol) == [
        (
            "VolUpdated",
            {"expiry": expiry, "atm": 7 * WAD // 10, "skew": -MAX_SKEW, "feeder": feeder},
        )
    ]
    assert vol.entry(expiry) == (7 * WAD // 10, -MAX_SKEW, boa.env.timestamp)
    assert vol.has_entry(expiry) is True
    assert vol.is_fresh(expiry) is True
    push(vol, feeder, expiry, 7 * WAD // 10, MAX_SKEW)
    assert vol.entry(expiry) == (7 * WAD // 10, MAX_SKEW, boa.env.timestamp)


def test_vol_oracle_update_bounds(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 7 * DAY
    with boa.env.prank(feeder):
        with boa.reverts("vol: atm out of bounds"):
            vol.update(expiry, VOL_MIN - 1, 0)
        with boa.reverts("vol: atm out of bounds"):
            vol.update(expiry, VOL_MAX + 1, 0)
        with boa.reverts("vol: skew out of bounds"):
            vol.update(expiry, WAD // 2, MAX_SKEW + 1)
        with boa.reverts("vol: skew out of bounds"):
            vol.update(expiry, WAD // 2, -MAX_SKEW - 1)
        with boa.reverts("vol: skew out of bounds"):
            vol.update(expiry, WAD // 2, -(2**255))
        with boa.reverts("vol: expiry in the past"):
            vol.update(boa.env.timestamp, WAD // 2, 0)
        # Both ends are accepted; the first update of an expiry is not bounded by max_change.
        vol.update(expiry, VOL_MIN, MAX_SKEW)
        vol.update(expiry + 1, VOL_MAX, -MAX_SKEW)


def test_vol_oracle_update_requires_feeder(vol: Any) -> None:
    with boa.reverts("vol: not a feeder"):
        vol.update(boa.env.timestamp + DAY, WAD // 2, 0)


def test_vol_oracle_max_change(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 7 * DAY
    push(vol, feeder, expiry, WAD // 2, 0)
    with boa.env.prank(feeder):
        with boa.reverts("vol: change too large"):
            vol.update(expiry, WAD // 2 + MAX_CHANGE + 1, 0)
        with boa.reverts("vol: change too large"):
            vol.update(expiry, WAD // 2 - MAX_CHANGE - 1, 0)
        vol.update(expiry, WAD // 2 + MAX_CHANGE, 0)
        vol.update(expiry, WAD // 2, 0)
        vol.update(expiry, WAD // 2 - MAX_CHANGE, 0)
    assert vol.entry(expiry)[0] == WAD // 2 - MAX_CHANGE
    # Other expiries are independent.
    push(vol, feeder, expiry + DAY, VOL_MAX, 0)


def test_vol_oracle_max_change_from_clamped_previous(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 7 * DAY
    push(vol, feeder, expiry, 2 * WAD, 0)
    vol.set_vol_bounds(VOL_MIN, WAD)
    with boa.env.prank(feeder):
        # previous = clamp(2.0, 0.05, 1.0) = 1.0: 0.9 is one max_change away, 0.89 is not.
        with boa.reverts("vol: change too large"):
            vol.update(expiry, 9 * WAD // 10 - 1, 0)
        vol.update(expiry, 9 * WAD // 10, 0)


# ----------------------------------------------------------------------------------------------
# Owner
# ----------------------------------------------------------------------------------------------


def test_vol_oracle_constructor_state_and_events() -> None:
    oracle = deployer(VOL_ORACLE).deploy(VOL_MIN, VOL_MAX, MAX_CHANGE, MAX_SKEW, HEARTBEAT, MARKUP)
    assert [name for name, _ in events(oracle)] == [
        "OwnershipTransferred",
        "VolBoundsSet",
        "MaxChangeSet",
        "MaxSkewSet",
        "VolHeartbeatSet",
        "StaleMarkupSet",
    ]
    assert oracle.owner() == boa.env.eoa
    assert (oracle.vol_min(), oracle.vol_max()) == (VOL_MIN, VOL_MAX)
    assert (oracle.max_change(), oracle.max_skew()) == (MAX_CHANGE, MAX_SKEW)
    assert (oracle.vol_heartbeat(), oracle.stale_markup()) == (HEARTBEAT, MARKUP)
    with boa.reverts("vol: bad bounds"):
        deployer(VOL_ORACLE).deploy(VOL_MAX, VOL_MIN, MAX_CHANGE, MAX_SKEW, HEARTBEAT, MARKUP)
    with boa.reverts("vol: bad max_change"):
        deployer(VOL_ORACLE).deploy(VOL_MIN, VOL_MAX, 0, MAX_SKEW, HEARTBEAT, MARKUP)


def test_vol_oracle_feeders(vol: Any, feeder: str) -> None:
    other = boa.env.generate_address()
    vol.add_feeder(other)
    assert events(vol) == [("FeederAdded", {"feeder": other})]
    assert vol.is_feeder(other) is True
    with boa.reverts("vol: already a feeder"):
        vol.add_feeder(other)
    with boa.reverts("vol: zero address"):
        vol.add_feeder(ZERO)
    vol.remove_feeder(feeder)
    assert events(vol) == [("FeederRemoved", {"feeder": feeder})]
    assert vol.is_feeder(feeder) is False
    with boa.reverts("vol: not a feeder"):
        vol.remove_feeder(feeder)
    with boa.env.prank(feeder), boa.reverts("vol: not a feeder"):
        vol.update(boa.env.timestamp + DAY, WAD // 2, 0)
    with boa.env.prank(other), boa.reverts("ownable: not owner"):
        vol.add_feeder(feeder)
    with boa.env.prank(other), boa.reverts("ownable: not owner"):
        vol.remove_feeder(other)


@pytest.mark.parametrize(
    ("setter", "args", "event", "fields"),
    [
        (
            "set_vol_bounds",
            (10**15, 10 * WAD),
            "VolBoundsSet",
            {
                "old_vol_min": VOL_MIN,
                "old_vol_max": VOL_MAX,
                "new_vol_min": 10**15,
                "new_vol_max": 10 * WAD,
            },
        ),
        (
            "set_max_change",
            (10 * WAD,),
            "MaxChangeSet",
            {"old_max_change": MAX_CHANGE, "new_max_change": 10 * WAD},
        ),
        ("set_max_skew", (0,), "MaxSkewSet", {"old_max_skew": MAX_SKEW, "new_max_skew": 0}),
        (
            "set_vol_heartbeat",
            (86400,),
            "VolHeartbeatSet",
            {"old_heartbeat": HEARTBEAT, "new_heartbeat": 86400},
        ),
        (
            "set_stale_markup",
            (10 * WAD,),
            "StaleMarkupSet",
            {"old_markup": MARKUP, "new_markup": 10 * WAD},
        ),
    ],
)
def test_vol_oracle_setters(
    vol: Any, setter: str, args: tuple[int, ...], event: str, fields: dict[str, int]
) -> None:
    getattr(vol, setter)(*args)
    assert events(vol) == [(event, fields)]
    with boa.env.prank(boa.env.generate_address()), boa.reverts("ownable: not owner"):
        getattr(vol, setter)(*args)


@pytest.mark.parametrize(
    ("setter", "args", "reason"),
    [
        ("set_vol_bounds", (10**15 - 1, WAD), "vol: bad bounds"),
        ("set_vol_bounds", (WAD, 10 * WAD + 1), "vol: bad bounds"),
        ("set_vol_bounds", (WAD, WAD - 1), "vol: bad bounds"),
        ("set_max_change", (0,), "vol: bad max_change"),
        ("set_max_change", (10 * WAD + 1,), "vol: bad max_change"),
        ("set_max_skew", (10 * WAD + 1,), "vol: bad max_skew"),
        ("set_vol_heartbeat", (0,), "vol: bad heartbeat"),
        ("set_vol_heartbeat", (86401,), "vol: bad heartbeat"),
        ("set_stale_markup", (10 * WAD + 1,), "vol: bad stale markup"),
    ],
)
def test_vol_oracle_setter_bounds(
    vol: Any, setter: str, args: tuple[int, ...], reason: str
) -> None:
    with boa.reverts(reason):
        getattr(vol, setter)(*args)


def limits(vol: Any) -> tuple[int, int, int, int]:
    return vol.vol_min(), vol.vol_max(), vol.vol_heartbeat(), vol.stale_markup()


def test_vol_oracle_packed_limits_hold_their_hard_bounds_independently(vol: Any) -> None:
    """The four limits share one storage word: each setter changes its own field only, and
    every field holds its largest allowed value without spilling into the next."""
    vol.set_vol_bounds(10 * WAD, 10 * WAD)
    assert limits(vol) == (10 * WAD, 10 * WAD, HEARTBEAT, MARKUP)
    vol.set_vol_heartbeat(86400)
    assert limits(vol) == (10 * WAD, 10 * WAD, 86400, MARKUP)
    vol.set_stale_markup(10 * WAD)
    assert limits(vol) == (10 * WAD, 10 * WAD, 86400, 10 * WAD)
    vol.set_vol_bounds(10**15, 10**15)
    assert limits(vol) == (10**15, 10**15, 86400, 10 * WAD)
    vol.set_stale_markup(0)
    vol.set_vol_heartbeat(1)
    assert limits(vol) == (10**15, 10**15, 1, 0)


def test_vol_oracle_setters_take_effect(vol: Any, feeder: str) -> None:
    expiry = boa.env.timestamp + 7 * DAY
    push(vol, feeder, expiry, WAD // 2, 0)
    vol.set_max_change(WAD)
    push(vol, feeder, expiry, 3 * WAD // 2, 0)
    vol.set_max_skew(0)
    with boa.env.prank(feeder), boa.reverts("vol: skew out of bounds"):
        vol.update(expiry, 3 * WAD // 2, 1)
    vol.set_vol_heartbeat(10)
    boa.env.time_travel(seconds=11)
    assert vol.is_fresh(expiry) is False
    vol.set_vol_heartbeat(11)
    assert vol.is_fresh(expiry) is True


def test_vol_oracle_ownership_two_step(vol: Any) -> None:
    owner = boa.env.eoa
    new = boa.env.generate_address()
    vol.transfer_ownership(new)
    assert events(vol) == [
        ("OwnershipTransferStarted", {"previous_owner": owner, "new_owner": new})
    ]
    assert (vol.owner(), vol.pending_owner()) == (owner, new)
    with boa.env.prank(boa.env.generate_address()), boa.reverts("ownable: not pending owner"):
        vol.accept_ownership()
    with boa.env.prank(new):
        vol.accept_ownership()
    assert events(vol) == [("OwnershipTransferred", {"previous_owner": owner, "new_owner": new})]
    assert (vol.owner(), vol.pending_owner()) == (new, ZERO)
    with boa.reverts("ownable: not owner"):
        vol.set_max_skew(0)
    with boa.reverts("ownable: not owner"):
        vol.transfer_ownership(owner)


def test_vol_oracle_packed_entries_are_the_stored_words() -> None:
    oracle = load(
        "contracts/oracle/VolOracle.vy", WAD // 20, 5 * WAD, WAD // 2, 2 * WAD, 3600, WAD // 2
    )
    oracle.add_feeder(boa.env.eoa)
    expiries = [boa.env.timestamp + d * 86_400 for d in (7, 30)]
    oracle.update(expiries[0], 6 * WAD // 10, -WAD // 10)
    oracle.update(expiries[1], 7 * WAD // 10, WAD // 20)
    limits, entries = oracle.packed_entries([expiries[1], 0, expiries[0], expiries[1]])
    assert limits == R.pack_limits(WAD // 20, 5 * WAD, 3600, WAD // 2)
    words = [R.pack_entry(*oracle.entry(e)) for e in expiries]
    assert entries == [words[1], 0, words[0], words[1]]  # expiry 0: no expiry, answered 0
    assert oracle.packed_entries([]) == (limits, [])
    with boa.reverts("vol: no entry"):
        oracle.packed_entries([expiries[0], expiries[0] + 1])
