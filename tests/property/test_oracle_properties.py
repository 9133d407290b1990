"""Property tests of the oracle layer (OracleAggregator, VolOracle) with Hypothesis on titanoboa.

- the median lies within [min, max] of the fresh sources, and equals a Python model of it
  (median, confidence, oldest timestamp) exactly;
- with >= 3 fresh sources, one arbitrary source cannot move the answer outside [min, max] of
  the honest ones (a malformed answer makes price() revert, which moves nothing);
- a stale source is never used: changing its answer changes nothing;
- decimals 0..18 normalise exactly (answer * 10**(18 - decimals));
- the vol oracle never answers outside [vol_min, vol_max], fresh or stale, and an update that
  succeeds never moves the ATM vol by more than max_change (and one within the rules always
  succeeds).

The contracts every example needs are deployed once by module-scoped fixtures; titanoboa's
pytest plugin runs each Hypothesis example inside `boa.env.anchor()`, so every example starts
from that state and its own deployments and writes are rolled back. Timestamps are set through
the mocks' `set_round_data` (past rounds) rather than by moving the chain clock, except in the
vol test, which restores the clock itself (an anchor does not).
"""

from __future__ import annotations

from typing import Any

import boa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import deployer, scaled

WAD = 10**18
ZERO = "0x" + "00" * 20
MAX_PRICE = 10**36
MAX_HEARTBEAT = 2 * 86400


@pytest.fixture(scope="module")
def pool() -> dict[int, list[Any]]:
    """Eight mock feeds for every decimals value 0..18."""
    return {
        d: [
            deployer("contracts/mocks/MockAggregatorV3.vy").deploy(d, "X / USD", 10**d)
            for _ in range(8)
        ]
        for d in range(19)
    }


def deploy_aggregator(feeds: list[Any], heartbeats: list[int], min_sources: int) -> Any:
    return deployer("contracts/oracle/OracleAggregator.vy").deploy(
        [f.address for f in feeds], heartbeats, min_sources, ZERO, 3600, WAD
    )


def model_price(values: list[int]) -> tuple[int, int]:
    """(median, confidence) exactly as the contract defines them."""
    s = sorted(values)
    m = len(s)
    median = s[m // 2] if m % 2 else (s[m // 2 - 1] + s[m // 2]) // 2
    ratio = -(-(s[-1] - s[0]) * WAD // median)
    return median, max(0, WAD - ratio)


# A source: decimals, a price in wad (kept exactly representable in those decimals), its
# heartbeat and the age of its latest round.
@st.composite
def sources(draw: st.DrawFn, min_size: int = 1, max_size: int = 8) -> list[dict[str, int]]:
    n = draw(st.integers(min_value=min_size, max_value=max_size))
    out = []
    for _ in range(n):
        decimals = draw(st.integers(min_value=0, max_value=18))
        scale = 10 ** (18 - decimals)
        # Prices from 1e-6 to 1e9 units (wad), as multiples of the feed's resolution.
        units = draw(st.integers(min_value=max(1, 10**12 // scale), max_value=10**27 // scale))
        heartbeat = draw(st.integers(min_value=1, max_value=7200))
        age = draw(st.integers(min_value=0, max_value=9000))
        out.append({"decimals": decimals, "answer": units, "heartbeat": heartbeat, "age": age})
    return out


def configure(pool: dict[int, list[Any]], spec: list[dict[str, int]]) -> list[Any]:
    """Point one mock per source at its answer and age; returns the feeds, in order."""
    used: dict[int, int] = {}
    now = boa.env.timestamp
    feeds = []
    for s in spec:
        k = used.get(s["decimals"], 0)
        used[s["decimals"]] = k + 1
        f = pool[s["decimals"]][k]
        t = now - s["age"]
        f.set_round_data(1, s["answer"], t, t, 1)
        feeds.append(f)
    return feeds


def wad_of(s: dict[str, int]) -> int:
    return s["answer"] * 10 ** (18 - s["decimals"])


@settings(max_examples=scaled(200))
@given(spec=sources(), min_sources=st.integers(min_value=1, max_value=8))
def test_oracle_property_median_of_fresh_sources(
    pool: dict[int, list[Any]], spec: list[dict[str, int]], min_sources: int
) -> None:
    min_sources = min(min_sources, len(spec))
    feeds = configure(pool, spec)
    agg = deploy_aggregator(feeds, [s["heartbeat"] for s in spec], min_sources)
    fresh = [s for s in spec if s["age"] <= s["heartbeat"]]
    if len(fresh) < min_sources:
        with boa.reverts("oracle: too few fresh sources"):
            agg.price()
        return
    median, confidence, oldest = agg.price()
    values = [wad_of(s) for s in fresh]
    assert min(values) <= median <= max(values)
    assert (median, confidence) == model_price(values)
    assert 0 <= confidence <= WAD
    assert oldest == boa.env.timestamp - max(s["age"] for s in fresh)


@settings(max_examples=scaled(200))
@given(
    honest=st.lists(st.integers(min_value=1, max_value=10**30), min_size=2, max_size=7),
    adversary=st.one_of(
        st.integers(min_value=1, max_value=MAX_PRICE),
        st.integers(min_value=-(2**255), max_value=2**255 - 1),
    ),
    position=st.integers(min_value=0, max_value=7),
)
def test_oracle_property_one_source_cannot_escape_honest_range(
    pool: dict[int, list[Any]], honest: list[int], adversary: int, position: int
) -> None:
    # 18-decimal feeds so answers are wads; n = len(honest) + 1 >= 3 sources, all fresh.
    answers = list(honest)
    answers.insert(position % (len(answers) + 1), adversary)
    spec = [{"decimals": 18, "answer": a, "heartbeat": 3600, "age": 0} for a in answers]
    feeds = configure(pool, spec)
    agg = deploy_aggregator(feeds, [3600] * len(feeds), len(feeds))
    if adversary <= 0:
        # A malformed answer halts the price: it cannot move it.
        with boa.reverts("oracle: non-positive answer"):
            agg.price()
    elif adversary > MAX_PRICE:
        with boa.reverts("oracle: answer too large"):
            agg.price()
    else:
        median, _, _ = agg.price()
        assert min(honest) <= median <= max(honest)


@settings(max_examples=scaled(150))
@given(spec=sources(min_size=2), data=st.data())
def test_oracle_property_stale_source_never_used(
    pool: dict[int, list[Any]], spec: list[dict[str, int]], data: st.DataObject
) -> None:
    # Make one source stale and keep at least one other fresh.
    stale_ix = data.draw(st.integers(min_value=0, max_value=len(spec) - 1))
    stale = spec[stale_ix]
    stale["age"] = stale["heartbeat"] + data.draw(st.integers(min_value=1, max_value=1000))
    keep = spec[(stale_ix + 1) % len(spec)]
    keep["age"] = min(keep["age"], keep["heartbeat"])
    feeds = configure(pool, spec)
    agg = deploy_aggregator(feeds, [s["heartbeat"] for s in spec], 1)
    before = agg.price()
    fresh = [wad_of(s) for s in spec if s["age"] <= s["heartbeat"]]
    assert before[:2] == model_price(fresh)
    # Any other valid answer of the stale source, even an extreme one, changes nothing.
    t = boa.env.timestamp - stale["age"]
    limit = MAX_PRICE // 10 ** (18 - stale["decimals"])
    wild = data.draw(st.sampled_from([1, limit]) | st.integers(min_value=1, max_value=limit))
    feeds[stale_ix].set_round_data(2, wild, t, t, 2)
    assert agg.price() == before


@settings(max_examples=scaled(150))
@given(decimals=st.integers(min_value=0, max_value=18), data=st.data())
def test_oracle_property_decimals_normalise_exactly(
    pool: dict[int, list[Any]], decimals: int, data: st.DataObject
) -> None:
    scale = 10 ** (18 - decimals)
    answer = data.draw(st.integers(min_value=1, max_value=MAX_PRICE // scale))
    spec = [{"decimals": decimals, "answer": answer, "heartbeat": 60, "age": 0}]
    agg = deploy_aggregator(configure(pool, spec), [60], 1)
    assert agg.price()[:2] == (answer * scale, WAD)


# ----------------------------------------------------------------------------------------------
# VolOracle
# ----------------------------------------------------------------------------------------------

VOL_HEARTBEAT = 600


@pytest.fixture(scope="module")
def vol_oracle() -> tuple[Any, str]:
    feeder = boa.env.generate_address()
    oracle = deployer("contracts/oracle/VolOracle.vy").deploy(
        WAD // 100, 10 * WAD, WAD // 10, 10 * WAD, VOL_HEARTBEAT, WAD // 2
    )
    oracle.add_feeder(feeder)
    return oracle, feeder


vol_params = st.tuples(
    st.integers(min_value=10**15, max_value=10 * WAD),  # vol_min
    st.integers(min_value=10**15, max_value=10 * WAD),  # vol_max
    st.integers(min_value=1, max_value=2 * WAD),  # max_change
    st.integers(min_value=0, max_value=10 * WAD),  # max_skew
    st.integers(min_value=0, max_value=10 * WAD),  # stale_markup
)
prices = st.integers(min_value=1, max_value=MAX_PRICE)
steps = st.lists(
    st.tuples(
        # A proposed ATM: absolute (None) or a move from the last accepted one.
        st.one_of(st.none(), st.integers(min_value=-3 * WAD, max_value=3 * WAD)),
        st.integers(min_value=0, max_value=11 * WAD),  # absolute proposal
        st.integers(min_value=-11 * WAD, max_value=11 * WAD),  # proposed skew
        st.integers(min_value=0, max_value=2 * VOL_HEARTBEAT),  # seconds before the update
        prices,  # strike of the read after it
        prices,  # forward of the read after it
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=scaled(200))
@given(params=vol_params, steps=steps)
def test_vol_oracle_property_bounded_answers_and_updates(
    vol_oracle: tuple[Any, str],
    params: tuple[int, int, int, int, int],
    steps: list[tuple[int | None, int, int, int, int, int]],
) -> None:
    oracle, feeder = vol_oracle
    vol_min, vol_max, max_change, max_skew, markup = params
    vol_min, vol_max = min(vol_min, vol_max), max(vol_min, vol_max)
    clock = boa.env.timestamp
    try:
        oracle.set_vol_bounds(vol_min, vol_max)
        oracle.set_max_change(max_change)
        oracle.set_max_skew(max_skew)
        oracle.set_stale_markup(markup)
        expiry = clock + 365 * 86400
        previous: int | None = None
        for move, absolute, skew, wait, strike, forward in steps:
            boa.env.time_travel(seconds=wait)
            atm = absolute if move is None or previous is None else max(0, previous + move)
            reason = None
            if not vol_min <= atm <= vol_max:
                reason = "vol: atm out of bounds"
            elif abs(skew) > max_skew:
                reason = "vol: skew out of bounds"
            elif previous is not None and abs(atm - previous) > max_change:
                reason = "vol: change too large"
            with boa.env.prank(feeder):
                if reason is None:
                    oracle.update(expiry, atm, skew)
                    previous = atm
                else:
                    with boa.reverts(reason):
                        oracle.update(expiry, atm, skew)
            if previous is None:
                with boa.reverts("vol: no entry"):
                    oracle.sigma(expiry, strike, forward)
                continue
            # The stored ATM is the last accepted one: no update moved it by more than max_change.
            assert oracle.entry(expiry)[0] == previous
            assert vol_min <= oracle.sigma(expiry, strike, forward) <= vol_max
            assert vol_min <= oracle.sigma(expiry, forward, forward) <= vol_max
    finally:
        boa.env.timestamp = clock
