# pragma version ~=0.4.3
# pragma optimize gas
"""
@title PoolTwapFeed: a ConstantProductPool's time-weighted average price behind AggregatorV3
@license MIT
@notice Answers the average price of `base_token` in the pool's other token over the last
        `window` seconds (at least; see below), as an 18-decimal wad, through the Chainlink
        AggregatorV3 functions (`latestRoundData`, `getRoundData`, `decimals`, `description`,
        `version`), so OracleAggregator can use it as a source next to Chainlink-style feeds.

        Observations. A ring buffer of CARDINALITY (timestamp, cumulative price) snapshots of
        the pool's accumulator (contracts/venues/ConstantProductPool.vy: wad price times seconds)
        is filled by the permissionless `update()`, which records at most one snapshot per
        `period` = ceil(window / (CARDINALITY - 1)) seconds; the constructor records the first.
        The answer is
            twap = (cumulative(now) - cumulative(t_obs)) / (now - t_obs)
        with t_obs the newest observation at least `window` old, so the effective window is
        [window, window + period] when `update()` runs every `period` (a keeper's job), and
        longer when it does not.

        Round data. roundId = answeredInRound = the number of observations recorded (it grows
        with every recorded `update()`); startedAt = t_obs; updatedAt = t_obs + window, which is
        block.timestamp exactly when the effective window equals the configured one and falls
        behind it by the excess otherwise. A consumer's heartbeat check therefore bounds how
        much longer than `window` the averaging may be: set the heartbeat to at least
        `period` plus the keeper's update latency (and below `window`).

        Warm-up. Until an observation is `window` old (the first `window` seconds after
        deployment) there is no full window: the feed then answers a well-formed but stale
        round, updatedAt = 1 (1970), with startedAt = the first observation and the average
        since then (the spot price in the deployment block). OracleAggregator treats it like
        any stale source and skips it, instead of failing closed on a malformed round; a
        consumer that checks freshness can never use it. `latestRoundData` never reverts
        (except inside a pool call, where the pool's reentrancy lock rejects the read).
        The pool must hold liquidity when the feed is deployed ("twap: empty pool"); its
        reserves never return to zero afterwards (MINIMUM_LIQUIDITY), so every second the
        feed averages has a positive price.

        Manipulation resistance. The pool advances its accumulator on the first state change
        of each block with the reserves from before that change, so a price pushed to p_m
        inside a block counts only from the end of that block. If the price is p_m for one
        block of dt seconds and the attacker (or an arbitrageur) restores it in the next block,
        the TWAP over a window W_eff >= window moves by (p_m - p) * dt / W_eff: at most dt/window
        of the manipulation. Holding the price for k blocks costs k blocks of arbitrage losses
        for k times the effect. Snapshots taken by `update()` use the counterfactual
        accumulator at block.timestamp, which excludes prices set in the current block.
        Donations to the pool do not move its price (reserves are internal accounting).
        Limits: a thin pool can be held off-price for many blocks by a well-funded attacker
        (each block costs the arbitrage loss on the pool's depth): choose deep pools, size the
        window with that cost in mind, and use the feed next to independent sources in the
        aggregator's median.
"""

from contracts.interfaces import IConstantProductPool

CARDINALITY: public(constant(uint256)) = 8
MIN_WINDOW: public(constant(uint256)) = 60
MAX_WINDOW: public(constant(uint256)) = 7 * 86_400
DECIMALS: constant(uint8) = 18
VERSION: constant(uint256) = 1

event ObservationRecorded:
    round_id: indexed(uint256)
    timestamp: uint256
    cumulative: uint256

pool: public(immutable(address))
base_token: public(immutable(address))
quote_token: public(immutable(address))
window: public(immutable(uint256))
period: public(immutable(uint256))
BASE_IS_TOKEN0: immutable(bool)

description: public(String[64])
observation_count: public(uint256)
observation_timestamps: public(uint256[CARDINALITY])
observation_cumulatives: public(uint256[CARDINALITY])


@deploy
def __init__(pool_: address, base_token_: address, window_: uint256, description_: String[64]):
    """
    @notice Deploy a TWAP feed for the price of `base_token_` in the pool's other token.
    @dev Records the first observation. Reverts "twap: zero pool", "twap: token not in pool",
         "twap: window out of range" (outside [MIN_WINDOW, MAX_WINDOW]), "twap: empty pool".
    @param pool_ The ConstantProductPool.
    @param base_token_ The priced token (token0 or token1 of the pool).
    @param window_ Averaging window in seconds.
    @param description_ Human-readable description, e.g. "ETH / USD pool TWAP 30m".
    """
    assert pool_ != empty(address), "twap: zero pool"
    assert window_ >= MIN_WINDOW and window_ <= MAX_WINDOW, "twap: window out of range"
    t0: address = staticcall IConstantProductPool(pool_).token0()
    t1: address = staticcall IConstantProductPool(pool_).token1()
    assert base_token_ == t0 or base_token_ == t1, "twap: token not in pool"
    r0: uint256 = 0
    r1: uint256 = 0
    last: uint256 = 0
    r0, r1, last = staticcall IConstantProductPool(pool_).get_reserves()
    assert r0 != 0 and r1 != 0, "twap: empty pool"
    pool = pool_
    base_token = base_token_
    BASE_IS_TOKEN0 = base_token_ == t0
    quote_token = t1 if base_token_ == t0 else t0
    window = window_
    # ceil(window / (CARDINALITY - 1)): CARDINALITY - 1 spacings cover a whole window.
    period = (window_ + CARDINALITY - 2) // (CARDINALITY - 1)
    self.description = description_
    self._record()


@internal
@view
def _cumulative() -> uint256:
    """
    @dev The pool's accumulator for base_token, extrapolated to block.timestamp.
    """
    return staticcall IConstantProductPool(pool).cumulative_price_now(BASE_IS_TOKEN0)


@internal
def _record():
    """
    @dev Write observation number observation_count + 1 into the ring buffer.
    """
    count: uint256 = self.observation_count
    idx: uint256 = count % CARDINALITY
    cumulative: uint256 = self._cumulative()
    self.observation_timestamps[idx] = block.timestamp
    self.observation_cumulatives[idx] = cumulative
    self.observation_count = count + 1
    log ObservationRecorded(round_id=count + 1, timestamp=block.timestamp, cumulative=cumulative)


@external
def update() -> bool:
    """
    @notice Record an observation of the pool's accumulator if the last one is at least
            `period` old. Permissionless; a keeper calls it about every `period` seconds.
    @return True when an observation was recorded, False when it was too early.
    """
    count: uint256 = self.observation_count
    last: uint256 = self.observation_timestamps[(count - 1) % CARDINALITY]
    if block.timestamp < last + period:
        return False
    self._record()
    return True


@internal
@view
def _latest() -> (uint80, int256, uint256, uint256, uint80):
    """
    @dev The round `latestRoundData` answers (see the module notice).
    """
    count: uint256 = self.observation_count
    # Scan forward from the oldest stored observation: timestamps increase along the ring,
    # and with regular updates the one wanted is the oldest or the next, so the loop
    # usually reads one or two slots. count >= 1 (the constructor records one).
    stored: uint256 = min(count, CARDINALITY)
    oldest: uint256 = (count - stored) % CARDINALITY
    found: bool = False
    idx: uint256 = oldest
    for k: uint256 in range(CARDINALITY):
        if k >= stored:
            break
        j: uint256 = (oldest + k) % CARDINALITY
        # t + window <= now, written without underflow near genesis.
        if self.observation_timestamps[j] + window > block.timestamp:
            break
        idx = j
        found = True
    t_obs: uint256 = self.observation_timestamps[idx]
    round_id: uint80 = convert(count, uint80)
    if not found and t_obs == block.timestamp:
        # Warm-up, deployment block: no time to average yet; the spot price, marked stale.
        spot: uint256 = 0
        if BASE_IS_TOKEN0:
            spot = staticcall IConstantProductPool(pool).spot_price0()
        else:
            spot = staticcall IConstantProductPool(pool).spot_price1()
        return round_id, convert(spot, int256), t_obs, 1, round_id
    # Wrapping difference of the modulo-2**256 accumulator (see the pool); the true
    # difference is below 2**232 * (block.timestamp - t_obs): exact for any realistic age.
    delta: uint256 = unsafe_sub(self._cumulative(), self.observation_cumulatives[idx])
    # block.timestamp > t_obs here (>= window > 0 past it when found).
    twap: uint256 = delta // (block.timestamp - t_obs)
    # A pool price is below 2**232 (see the pool), so the average fits an int256.
    updated_at: uint256 = t_obs + window
    if not found:
        updated_at = 1  # warm-up: a shorter average than the window, marked stale
    return round_id, convert(twap, int256), t_obs, updated_at, round_id


@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice The TWAP as a Chainlink round: (roundId, answer, startedAt, updatedAt,
            answeredInRound).
    @dev answer is the wad TWAP of base_token in quote_token over [startedAt, now], with
         now - startedAt >= window; updatedAt = startedAt + window <= now. Before a full
         window of history: a stale round with updatedAt = 1. See the module notice.
    @return roundId, answer, startedAt, updatedAt, answeredInRound.
    """
    return self._latest()


@external
@view
def getRoundData(round_id: uint80) -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice AggregatorV3 compatibility: only the latest round is available.
    @dev Reverts "twap: round not available" for any other round id (the TWAP is computed
         live from the accumulator, so past rounds are not stored).
    @param round_id The round asked for.
    @return The same tuple as `latestRoundData` when round_id is the latest round.
    """
    data: (uint80, int256, uint256, uint256, uint80) = self._latest()
    assert round_id == data[0], "twap: round not available"
    return data


@external
@view
def decimals() -> uint8:
    """
    @notice Decimals of the answer: 18 (a wad).
    @return 18.
    """
    return DECIMALS


@external
@view
def version() -> uint256:
    """
    @notice AggregatorV3 version of this feed's implementation.
    @return 1.
    """
    return VERSION
