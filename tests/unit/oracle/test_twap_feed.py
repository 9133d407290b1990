"""PoolTwapFeed: TWAP correctness across blocks against an independent price-path model, the
AggregatorV3 round semantics, the observation ring buffer, and every revert."""

from __future__ import annotations

import boa
import pytest

from tests.conftest import ROOT, deployer

WAD = 10**18
ZERO = "0x0000000000000000000000000000000000000000"
MAX_UINT = 2**256 - 1
WINDOW = 1800
PERIOD = -(-WINDOW // 7)  # ceil(window / (CARDINALITY - 1)), CARDINALITY = 8


class PricePath:
    """Piecewise-constant pool price (the floored wad price the pool integrates) over time."""

    def __init__(self) -> None:
        self.points: list[tuple[int, int]] = []  # (from_time, price), increasing time

    def set(self, t: int, price: int) -> None:
        if self.points and self.points[-1][0] == t:
            self.points[-1] = (t, price)
        else:
            self.points.append((t, price))

    def integral(self, t0: int, t1: int) -> int:
        total = 0
        for i, (start, price) in enumerate(self.points):
            end = self.points[i + 1][0] if i + 1 < len(self.points) else t1
            lo, hi = max(start, t0), min(end, t1)
            if hi > lo:
                total += price * (hi - lo)
        return total

    def twap(self, t0: int, t1: int) -> int:
        return self.integral(t0, t1) // (t1 - t0)


@pytest.fixture(scope="module")
def feed_deployer():
    return deployer("contracts/oracle/PoolTwapFeed.vy")


@pytest.fixture(scope="module")
def pool(eth, usd, trader):
    p = boa.load(
        str(ROOT / "contracts/venues/ConstantProductPool.vy"),
        eth.address,
        usd.address,
        30,
        "LP",
        "LP",
    )
    for t in (eth, usd):
        t.mint(trader, 10**40)
        with boa.env.prank(trader):
            t.approve(p.address, MAX_UINT)
    with boa.env.prank(trader):
        p.add_liquidity(100 * WAD, 300_000 * 10**6, 0, trader)
    return p


@pytest.fixture(scope="module")
def feed(feed_deployer, pool, eth):
    return feed_deployer.deploy(pool.address, eth.address, WINDOW, "ETH / USD pool TWAP 30m")


def price0(pool) -> int:
    return pool.spot_price0()


def price1(pool) -> int:
    r0, r1, _ = pool.get_reserves()
    return r0 * 10**6 // r1  # 10**(18 + d1 - d0) = 10**6


def test_metadata(feed, pool, eth, usd):
    assert feed.decimals() == 18
    assert feed.description() == "ETH / USD pool TWAP 30m"
    assert feed.version() == 1
    assert feed.pool() == pool.address
    assert feed.base_token() == eth.address
    assert feed.quote_token() == usd.address
    assert feed.window() == WINDOW
    assert feed.period() == PERIOD == 258
    assert feed.observation_count() == 1
    assert feed.observation_timestamps(0) == boa.env.timestamp
    assert feed.CARDINALITY() == 8


def test_deploy_reverts(feed_deployer, pool, eth, usd, trader):
    with boa.reverts("twap: zero pool"):
        feed_deployer.deploy(ZERO, eth.address, WINDOW, "x")
    with boa.reverts("twap: window out of range"):
        feed_deployer.deploy(pool.address, eth.address, 59, "x")
    with boa.reverts("twap: window out of range"):
        feed_deployer.deploy(pool.address, eth.address, 7 * 86_400 + 1, "x")
    with boa.reverts("twap: token not in pool"):
        feed_deployer.deploy(pool.address, trader, WINDOW, "x")
    empty = boa.load(
        str(ROOT / "contracts/venues/ConstantProductPool.vy"),
        eth.address,
        usd.address,
        30,
        "E",
        "E",
    )
    with boa.reverts("twap: empty pool"):
        feed_deployer.deploy(empty.address, eth.address, WINDOW, "x")
    feed_deployer.deploy(pool.address, usd.address, 60, "x")
    feed_deployer.deploy(pool.address, usd.address, 7 * 86_400, "x")


def test_warm_up_round_is_stale(feed, pool, usd, trader):
    """Before a full window: a well-formed round marked stale (updatedAt = 1) whose answer is the
    average since deployment (the spot price in the deployment block)."""
    t0 = feed.observation_timestamps(0)
    assert feed.latestRoundData() == (1, 3000 * WAD, t0, 1, 1)
    assert feed.getRoundData(1) == (1, 3000 * WAD, t0, 1, 1)
    with boa.reverts("twap: round not available"):
        feed.getRoundData(0)
    with boa.reverts("twap: round not available"):
        feed.getRoundData(2)
    boa.env.time_travel(seconds=100)
    with boa.env.prank(trader):
        pool.swap(usd.address, 30_000 * 10**6, 0, trader)
    p1 = pool.spot_price0()
    boa.env.time_travel(seconds=WINDOW - 101)
    avg = (3000 * WAD * 100 + p1 * (WINDOW - 101)) // (WINDOW - 1)
    assert feed.latestRoundData() == (1, avg, t0, 1, 1)
    boa.env.time_travel(seconds=1)
    avg = (3000 * WAD * 100 + p1 * (WINDOW - 100)) // WINDOW
    assert feed.latestRoundData() == (1, avg, t0, t0 + WINDOW, 1)


def test_usable_as_oracle_aggregator_source(feed, pool, usd, trader):
    """OracleAggregator skips the feed while it warms up and uses it afterwards."""
    chainlink = boa.load(
        str(ROOT / "contracts/mocks/MockAggregatorV3.vy"), 8, "ETH / USD", 3000 * 10**8
    )
    oracle = boa.load(
        str(ROOT / "contracts/oracle/OracleAggregator.vy"),
        [chainlink.address, feed.address],
        [172_800, PERIOD + 120],
        1,
        ZERO,
        0,
        0,
    )
    median, confidence, _ = oracle.price()
    assert (median, confidence) == (3000 * WAD, WAD)  # the TWAP feed is skipped (stale)
    with boa.env.prank(trader):
        pool.swap(usd.address, 30_000 * 10**6, 0, trader)
    boa.env.time_travel(seconds=WINDOW)
    twap = feed.latestRoundData()[1]
    assert twap > 3000 * WAD
    median, _, oldest = oracle.price()
    assert median == (3000 * WAD + twap) // 2  # both sources fresh: mean of the middle two
    assert oldest == min(chainlink.latestRoundData()[3], feed.latestRoundData()[3])
    # A keeper that stops updating makes the feed stale again: skipped, not trusted.
    boa.env.time_travel(seconds=PERIOD + 121)
    assert oracle.price()[0] == 3000 * WAD


def test_takes_no_part_in_settlement(feed, pool, usd, trader):
    """A TWAP has no round history (only its live latest round): OracleAggregator cannot prove
    a round dated at an expiry, so the owner marks it and settlement leaves it out."""
    with boa.env.anchor():
        chainlink = [
            boa.load(
                str(ROOT / "contracts/mocks/MockAggregatorV3.vy"), 8, "ETH / USD", 3000 * 10**8
            )
            for _ in range(2)
        ]
        oracle = boa.load(
            str(ROOT / "contracts/oracle/OracleAggregator.vy"),
            [c.address for c in chainlink] + [feed.address],
            [172_800, 172_800, PERIOD + 120],
            2,
            ZERO,
            0,
            0,
        )
        for _ in range(9):  # a keeper updating every period, for more than a window
            boa.env.time_travel(seconds=PERIOD)
            feed.update()
        expiry = boa.env.timestamp - PERIOD
        for c in chainlink:
            c.set_answer(3010 * 10**8)
        latest = feed.latestRoundData()
        assert latest[3] >= expiry  # fresh, and its round is "after the expiry"...
        with boa.reverts("twap: round not available"):
            feed.getRoundData(latest[0] - 1)  # ...but nothing proves it is the first one
        with boa.reverts("oracle: bad settlement hint"):
            oracle.settlement_price(expiry, [2, 2, latest[0]])
        oracle.set_round_history(feed.address, False)
        assert oracle.settlement_price(expiry, [2, 2, 0]) == 3010 * WAD


def test_update_spacing(feed):
    t0 = feed.observation_timestamps(0)
    boa.env.time_travel(seconds=PERIOD - 1)
    assert feed.update() is False
    assert feed.observation_count() == 1
    boa.env.time_travel(seconds=1)
    assert feed.update() is True
    logs = feed.get_logs()
    assert feed.observation_count() == 2
    assert feed.observation_timestamps(1) == t0 + PERIOD
    assert logs[0].round_id == 2 and logs[0].timestamp == t0 + PERIOD
    assert feed.update() is False


@pytest.mark.parametrize("base_is_token0", [True, False])
def test_twap_across_blocks(feed_deployer, pool, eth, usd, trader, base_is_token0):
    """Trades in many blocks, a keeper updating every period: the answer is the exact average of
    the pool's price path over [startedAt, now], and the round fields follow the spec."""
    base = eth if base_is_token0 else usd
    feed = feed_deployer.deploy(pool.address, base.address, WINDOW, "twap")
    spot = price0 if base_is_token0 else price1
    path = PricePath()
    path.set(boa.env.timestamp, spot(pool))
    obs = [boa.env.timestamp]
    trades = [
        (usd, 20_000 * 10**6),
        (eth, 3 * WAD),
        (usd, 45_000 * 10**6),
        (eth, 25 * WAD),
        (usd, 1_000 * 10**6),
        (eth, WAD // 2),
    ]
    for step in range(100):
        boa.env.time_travel(blocks=1 + step % 5)  # 12..60 s per step
        if step % 4 == 0:
            token, amount = trades[(step // 4) % len(trades)]
            with boa.env.prank(trader):
                pool.swap(token.address, amount, 0, trader)
            # The new price counts from this block's timestamp on.
            path.set(boa.env.timestamp, spot(pool))
        if feed.update():
            obs.append(boa.env.timestamp)
        now = boa.env.timestamp
        if now - obs[0] < WINDOW:
            warm = (len(obs), path.twap(obs[0], now), obs[0], 1, len(obs))
            assert feed.latestRoundData() == warm
            continue
        t_obs = max(t for t in obs if t <= now - WINDOW)
        round_id, answer, started, updated, answered = feed.latestRoundData()
        assert round_id == answered == len(obs)
        assert started == t_obs
        assert updated == t_obs + WINDOW <= now
        assert now - updated <= PERIOD + 60  # updates on time: lag below one period + a step
        assert answer == path.twap(t_obs, now)
        assert feed.getRoundData(round_id) == (round_id, answer, started, updated, answered)
        with boa.reverts("twap: round not available"):
            feed.getRoundData(round_id - 1)
    assert len(obs) > 8  # the ring buffer wrapped


def test_stale_keeper_lengthens_window_and_ages_updated_at(feed, pool, usd, trader):
    t0 = feed.observation_timestamps(0)
    path = PricePath()
    path.set(t0, price0(pool))
    boa.env.time_travel(seconds=WINDOW)
    with boa.env.prank(trader):
        pool.swap(usd.address, 30_000 * 10**6, 0, trader)
    path.set(boa.env.timestamp, price0(pool))
    boa.env.time_travel(seconds=5 * WINDOW)  # nobody calls update()
    now = boa.env.timestamp
    _, answer, started, updated, _ = feed.latestRoundData()
    assert started == t0
    assert now - updated == 5 * WINDOW  # the answer averages 6 windows: it looks 5 windows old
    assert answer == path.twap(t0, now)


def test_same_block_price_is_excluded(feed, pool, usd, eth, trader):
    """A trade in the current block does not change the answer until time passes."""
    boa.env.time_travel(seconds=WINDOW + 100)
    before = feed.latestRoundData()
    with boa.env.prank(trader):
        pool.swap(usd.address, 200_000 * 10**6, 0, trader)  # a large push up
    assert feed.latestRoundData() == before
    assert feed.update() is True  # a snapshot taken in the manipulated block...
    assert feed.latestRoundData()[1:4] == before[1:4]  # ...changes only the round ids
    boa.env.time_travel(seconds=12)
    with boa.env.prank(trader):
        pool.swap(eth.address, 30 * WAD, 0, trader)
    assert feed.latestRoundData()[1] > before[1]
