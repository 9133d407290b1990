"""Property tests of the oracle layer (OracleAggregator, VolOracle) with Hypothesis on titanoboa.

- the median lies within [min, max] of the fresh sources, and equals a Python model of it
  (median, confidence over the tightest strict majority, oldest timestamp) exactly;
- with >= 3 fresh sources, one arbitrary source cannot move the answer outside [min, max] of
  the honest ones (a malformed answer is skipped);
- with n sources and at most floor((n - 1) / 2) bad ones (any answer, malformed, reverting,
  withholding), price() still answers, within [min, max] of the honest answers, with a
  confidence at least 1 - (max H - min H) / median (the stated bound);
- the settlement price is the median of the sources' first rounds at or after the expiry
  (dated within the timeout), whoever calls and at any later block; with a minority of bad
  sources it lies within the honest first rounds' range;
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


def model_median(values: list[int]) -> int:
    s = sorted(values)
    m = len(s)
    return s[m // 2] if m % 2 else (s[m // 2 - 1] + s[m // 2]) // 2


def model_price(values: list[int]) -> tuple[int, int]:
    """(median, confidence) exactly as the contract defines them: the spread of the tightest
    floor(m/2) + 1 consecutive sorted answers over the median, ratio rounded up."""
    s = sorted(values)
    m = len(s)
    median = model_median(s)
    q = m // 2 + 1
    spread = min(s[i + q - 1] - s[i] for i in range(m - q + 1))
    ratio = -(-spread * WAD // median)
    return median, max(0, WAD - ratio)


def confidence_bound(honest: list[int], median: int) -> int:
    """The contract's stated lower bound: 1 - (max H - min H) / median (ratio rounded up)."""
    return max(0, WAD - -(-(max(honest) - min(honest)) * WAD // median))


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
    agg = deploy_aggregator(feeds, [3600] * len(feeds), len(honest))
    median, confidence, _ = agg.price()
    assert min(honest) <= median <= max(honest)
    assert confidence >= confidence_bound(honest, median)
    malformed = adversary <= 0 or adversary > MAX_PRICE
    assert agg.source_status()[position % len(answers)] == (2 if malformed else 0)


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
# A minority of bad sources: price() and settlement_price()
# ----------------------------------------------------------------------------------------------

HOUR = 3600
BAD_KINDS = (
    "answer",
    "zero",
    "negative",
    "future",
    "incomplete",
    "too large",
    "reverting",
    "stale",
)


@pytest.fixture(scope="module")
def hostile_pool() -> list[Any]:
    """Four feeds that can be made to revert (tests/contracts/HostileFeed.vy)."""
    return [deployer("tests/contracts/HostileFeed.vy").deploy(18, 3000 * WAD) for _ in range(4)]


honest_answers = st.integers(min_value=10**15, max_value=10**30)


@st.composite
def minority(draw: st.DrawFn) -> tuple[list[int], list[tuple[str, int]], list[int]]:
    """(honest answers, bad (kind, answer) pairs, a permutation placing them): n in 3..8
    sources, at most floor((n - 1) / 2) of them bad."""
    n = draw(st.integers(min_value=3, max_value=8))
    k = draw(st.integers(min_value=0, max_value=(n - 1) // 2))
    honest = draw(st.lists(honest_answers, min_size=n - k, max_size=n - k))
    bad = draw(
        st.lists(
            st.tuples(
                st.sampled_from(BAD_KINDS),
                st.one_of(st.integers(min_value=1, max_value=MAX_PRICE), honest_answers),
            ),
            min_size=k,
            max_size=k,
        )
    )
    order = draw(st.permutations(list(range(n))))
    return honest, bad, order


@settings(max_examples=scaled(100))
@given(case=minority())
def test_oracle_property_minority_of_bad_sources_cannot_stop_or_move_the_price(
    pool: dict[int, list[Any]], hostile_pool: list[Any], case: Any
) -> None:
    honest, bad, order = case
    now = boa.env.timestamp
    mocks = iter(pool[18])
    hostiles = iter(hostile_pool)
    slots: list[Any] = []
    for answer in honest:
        f = next(mocks)
        f.set_round_data(1, answer, now, now, 1)
        slots.append(f)
    for kind, answer in bad:
        if kind == "reverting":
            f = next(hostiles)
            f.set_mode(1)
        else:
            f = next(mocks)
            rid, t, answered = 1, now, 1
            if kind == "zero":
                answer = 0
            elif kind == "negative":
                answer = -answer
            elif kind == "future":
                t = now + 1 + answer % 10**6
            elif kind == "incomplete":
                rid = 2
            elif kind == "too large":
                answer = MAX_PRICE + answer
            elif kind == "stale":
                t = now - HOUR - 1  # withholding: its last round ages out
            f.set_round_data(rid, answer, t if kind != "future" else now, t, answered)
        slots.append(f)
    feeds = [slots[i] for i in order]
    n = len(feeds)
    # Configured to tolerate the most bad sources the bound allows.
    agg = deploy_aggregator(feeds, [HOUR] * n, n - (n - 1) // 2)
    median, confidence, _ = agg.price()
    assert min(honest) <= median <= max(honest)
    assert confidence_bound(honest, median) <= confidence <= WAD
    status = agg.source_status()
    assert len(status) == n
    assert all(status[order.index(i)] == 0 for i in range(len(honest)))


@st.composite
def settlement_case(draw: st.DrawFn) -> tuple[list[list[tuple[int, int]]], int, list[bool]]:
    """Per source its post-expiry rounds as (seconds after the expiry, answer), and whether it
    is bad. Honest sources publish their first round within the timeout; bad ones may
    withhold (no round), publish late, or answer anything."""
    n = draw(st.integers(min_value=3, max_value=8))
    k = draw(st.integers(min_value=0, max_value=(n - 1) // 2))
    rounds: list[list[tuple[int, int]]] = []
    flags = []
    for i in range(n):
        is_bad = i < k
        first = draw(st.integers(min_value=0, max_value=3 * HOUR if is_bad else HOUR))
        later = draw(st.lists(st.integers(min_value=1, max_value=HOUR), max_size=3))
        count = (
            draw(st.integers(min_value=0, max_value=1 + len(later))) if is_bad else 1 + len(later)
        )
        times = [first]
        for step in later:
            times.append(times[-1] + step)
        answers = st.integers(min_value=1, max_value=MAX_PRICE) if is_bad else honest_answers
        rounds.append([(t, draw(answers)) for t in times[:count]])
        flags.append(is_bad)
    order = draw(st.permutations(list(range(n))))
    return (
        [rounds[i] for i in order],
        draw(st.integers(min_value=0, max_value=30 * 86400)),
        [flags[i] for i in order],
    )


@settings(max_examples=scaled(100))
@given(case=settlement_case(), caller=st.integers(min_value=0, max_value=2**32))
def test_oracle_property_settlement_is_the_median_of_first_rounds_whoever_and_whenever(
    pool: dict[int, list[Any]], case: Any, caller: int
) -> None:
    from tests.deployment import settlement_hints

    histories, wait, bad = case
    clock = boa.env.timestamp
    expiry = clock - 5 * HOUR  # every round below is in the past; the deadline has passed
    try:
        feeds = pool[18][: len(histories)]
        first_rounds = []
        for f, rounds in zip(feeds, histories, strict=True):
            f.set_round_data(1, 3000 * WAD, expiry - 60, expiry - 60, 1)
            for rid, (dt, answer) in enumerate(rounds, start=2):
                f.set_round_data(rid, answer, expiry + dt, expiry + dt, rid)
            first_rounds.append(rounds[0] if rounds else None)
        n = len(feeds)
        agg = deploy_aggregator(feeds, [HOUR] * n, n - (n - 1) // 2)
        # The model: each source's first round, if dated within the timeout and well-formed.
        used = [a for r in first_rounds if r is not None for dt, a in [r] if dt <= HOUR]
        honest = [r[1] for r, b in zip(first_rounds, bad, strict=True) if not b]
        hints = settlement_hints(agg, feeds, expiry)
        expected = model_median(used)
        with boa.env.prank(boa.env.generate_address(f"caller {caller}")):
            assert agg.settlement_price(expiry, hints) == expected
        assert min(honest) <= expected <= max(honest)
        # Later: new rounds on every source and any later block change nothing.
        boa.env.time_travel(seconds=wait + 1)
        now = boa.env.timestamp
        for f, rounds in zip(feeds, histories, strict=True):
            f.set_round_data(len(rounds) + 2, 7 * WAD, now, now, len(rounds) + 2)
        later = settlement_hints(agg, feeds, expiry)
        # A source that had no round after the expiry now has a late one; the others' hints
        # stay.
        assert all(h == g for h, g, r in zip(hints, later, histories, strict=True) if r)
        assert agg.settlement_price(expiry, later) == expected
    finally:
        boa.env.timestamp = clock


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
