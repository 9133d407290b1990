# pragma version ~=0.4.3
# pragma optimize gas
"""
@title OracleAggregator: median spot price of several feeds, and the L2 sequencer guard
@license MIT
@notice Price: up to 8 sources behind the Chainlink AggregatorV3 interface (Chainlink feeds,
        PoolTwapFeed over Kappa's pools), each with its own heartbeat and decimals. `price()`
        reads every source and returns

            median_wad       the median of the fresh answers, normalised to 18 decimals
                             (an even count takes the mean of the middle two, rounded down);
            confidence_wad   1 - spread / median, floored at 0, where spread = max - min of the
                             fresh answers used (the ratio is rounded up, so the confidence is
                             rounded down: the conservative direction for margin);
            oldest_timestamp the oldest `updatedAt` among the fresh answers used.

        A source is fresh when block.timestamp - updatedAt <= its heartbeat; stale sources are
        skipped, never used. Fail closed: a source whose round is malformed makes the whole
        call revert, fresh or stale, because a feed that reports a broken round is broken or
        compromised and the owner must remove it:
            "oracle: incomplete round"        updatedAt == 0 or answeredInRound < roundId;
            "oracle: answer from the future"  updatedAt > block.timestamp;
            "oracle: non-positive answer"     answer <= 0;
            "oracle: answer too large"        the normalised answer exceeds 1e36 (the price
                                              domain of the math library);
        and when fewer than `min_sources` sources are fresh: "oracle: too few fresh sources".
        A source whose `latestRoundData` itself reverts also makes `price()` revert.

        Manipulation resistance: with f sources controlled by an attacker, the median stays
        within [min, max] of the honest fresh answers as long as at least 2f + 1 answers are
        used. Against one bad source that needs min_sources >= 3; the contract accepts smaller
        values (local chains, testnets with few feeds) and leaves that choice to the owner.
        A feed can be added once only (a duplicate would count twice in the median).

        Decimals: read from the feed by `add_source` and cached; 0..18 are accepted and
        normalise exactly (answer * 10**(18 - decimals)); more than 18 is rejected because it
        could not be normalised without rounding.

        Sequencer guard (DESIGN.md "Sequencer guard"; ISequencerGuard): the Chainlink L2
        sequencer-uptime feed reports answer 0 = up, 1 = down, startedAt = time of the last
        status change. The sequencer counts as up only if answer == 0 and startedAt != 0
        (Arbitrum reports startedAt == 0 before the feed is initialised); any other answer
        counts as down. `risk_increase_allowed()` is true when it is up and more than
        `grace_period` seconds have passed since it came back; `liquidation_threshold()` is 0
        then and -grace_liquidation_buffer otherwise (an auction may start iff H_MM < it).
        `sequencer_feed == empty(address)` means the chain has no L2 sequencer (L1, local
        anvil): always up, and seconds_since_up() is max_value(uint256). `price()` itself does
        not consult the guard: liquidations of deeply under-water accounts need a price while
        the sequencer is down or in grace.

        Roles: one owner (two-step transfer) manages sources, min_sources and the guard
        parameters, each change with an event. The guard lives in this contract (DESIGN.md
        layout) so the engine asks one address for both the price and the uptime status.
"""

from contracts.auth import ownable
from contracts.interfaces import IAggregatorV3
from contracts.interfaces import IOracleAggregator
from contracts.interfaces import ISequencerGuard

implements: IOracleAggregator
implements: ISequencerGuard

initializes: ownable

exports: (ownable.owner, ownable.pending_owner, ownable.transfer_ownership, ownable.accept_ownership)

struct Source:
    feed: address
    heartbeat: uint256
    decimals: uint8

event SourceAdded:
    feed: indexed(address)
    heartbeat: uint256
    decimals: uint8

event SourceRemoved:
    feed: indexed(address)

event SourceHeartbeatSet:
    feed: indexed(address)
    old_heartbeat: uint256
    new_heartbeat: uint256

event MinSourcesSet:
    old_min_sources: uint256
    new_min_sources: uint256

event SequencerFeedSet:
    old_feed: indexed(address)
    new_feed: indexed(address)

event GracePeriodSet:
    old_grace_period: uint256
    new_grace_period: uint256

event GraceLiquidationBufferSet:
    old_buffer: uint256
    new_buffer: uint256

MAX_SOURCES: constant(uint256) = 8
MAX_DECIMALS: constant(uint256) = 18
# Staleness bound of a source: 1 second to 2 days (Chainlink heartbeats go up to 1 day; the
# owner sets the feed's heartbeat plus a margin).
MAX_HEARTBEAT: constant(uint256) = 2 * 86400
# Largest normalised price: 1e18 quote units per unit, the domain of contracts/math/black76.vy.
MAX_PRICE: constant(uint256) = 10**36
WAD: constant(uint256) = 10**18
# Grace period after the sequencer comes back: at most 1 day (Chainlink suggests 1 hour).
MAX_GRACE_PERIOD: constant(uint256) = 86400
# Grace liquidation buffer, in health units (wad of the cash asset): at most 1e12 units.
MAX_GRACE_LIQUIDATION_BUFFER: constant(uint256) = 10**30

# A source packed in one slot (one cold read per source in price()):
# feed (bits 0..159) | heartbeat << 160 (bits 160..223) | decimals << 224 (bits 224..231).
MASK_160: constant(uint256) = 2**160 - 1
MASK_64: constant(uint256) = 2**64 - 1
# The first source's slot also holds the counts (bits 232..247): count (its low 8 bits) and
# min_sources (the next 8), both <= MAX_SOURCES. price() reads them with the first source.
COUNTS_SHIFT: constant(uint256) = 232
SOURCE_BITS: constant(uint256) = 2**232 - 1

# The sources in use are _sources[0 .. count); the counts live in _sources[0] (see
# COUNTS_SHIFT). 1 <= min_sources <= count at all times (after construction).
_sources: uint256[MAX_SOURCES]

# The sequencer-uptime feed (bits 0..159) and the grace period (bits 160..): the two values
# every guard check reads, in one slot. grace_period <= MAX_GRACE_PERIOD < 2**96.
_sequencer: uint256
grace_liquidation_buffer: public(uint256)


@deploy
def __init__(
    feeds: DynArray[address, MAX_SOURCES],
    heartbeats: DynArray[uint256, MAX_SOURCES],
    min_sources_: uint256,
    sequencer_feed_: address,
    grace_period_: uint256,
    grace_liquidation_buffer_: uint256,
):
    """
    @notice Deploy with an initial set of sources; the deployer is the owner.
    @dev Every argument is checked as by the corresponding owner function (same revert
         reasons); "oracle: length mismatch" when feeds and heartbeats differ in length.
    @param feeds AggregatorV3 feeds (at least min_sources_ of them, all distinct).
    @param heartbeats Staleness bound of each feed, seconds (1 .. 172800).
    @param min_sources_ Fresh sources needed by price() (1 .. len(feeds)).
    @param sequencer_feed_ Chainlink L2 sequencer-uptime feed, or empty(address) if none.
    @param grace_period_ Seconds after the sequencer comes back before risk may increase.
    @param grace_liquidation_buffer_ Health buffer (wad) below which liquidations may start
           while the sequencer is down or in grace.
    """
    assert len(feeds) == len(heartbeats), "oracle: length mismatch"
    ownable.__init__()
    for i: uint256 in range(len(feeds), bound=MAX_SOURCES):
        self._add_source(feeds[i], heartbeats[i])
    self._set_min_sources(min_sources_)
    self._set_sequencer_feed(sequencer_feed_)
    self._set_grace_period(grace_period_)
    self._set_grace_liquidation_buffer(grace_liquidation_buffer_)


# ---------------------------------------------------------------------------------------------
# Price
# ---------------------------------------------------------------------------------------------


@external
@view
def price() -> (uint256, uint256, uint256):
    """
    @notice The median price of the fresh sources, a confidence and the oldest time used.
    @dev Reverts (see the contract notice): "oracle: incomplete round", "oracle: answer from
         the future", "oracle: non-positive answer", "oracle: answer too large" for any
         malformed source, "oracle: too few fresh sources" when fewer than min_sources are
         fresh. Gas, cold, over MockAggregatorV3 feeds (bench/gas_oracle.py): about 1,200 +
         10,300 per source (31,500 for 3, 83,300 for 8); of each source's 10,300 the feed's
         own latestRoundData is about 4,600 and the cold account access 2,600.
    @return median_wad Median of the fresh normalised answers (wad, rounded down).
    @return confidence_wad max(0, 1 - (max - min) / median) over the answers used (wad,
            rounded down).
    @return oldest_timestamp The smallest updatedAt among the answers used.
    """
    first: uint256 = self._sources[0]
    counts: uint256 = first >> COUNTS_SHIFT
    n: uint256 = counts & 255
    # The fresh answers, kept sorted ascending by insertion; m of them so far.
    values: uint256[MAX_SOURCES] = empty(uint256[MAX_SOURCES])
    m: uint256 = 0
    oldest: uint256 = max_value(uint256)
    for i: uint256 in range(n, bound=MAX_SOURCES):
        packed: uint256 = first
        if i != 0:
            packed = self._sources[i]
        round_id: uint80 = 0
        answer: int256 = 0
        started_at: uint256 = 0
        updated_at: uint256 = 0
        answered_in_round: uint80 = 0
        round_id, answer, started_at, updated_at, answered_in_round = staticcall IAggregatorV3(
            convert(packed & MASK_160, address)
        ).latestRoundData()
        assert updated_at != 0 and answered_in_round >= round_id, "oracle: incomplete round"
        assert updated_at <= block.timestamp, "oracle: answer from the future"
        assert answer > 0, "oracle: non-positive answer"
        # decimals <= 18 (checked when added): the scale is at most 1e18, no overflow.
        scale: uint256 = pow_mod256(10, unsafe_sub(MAX_DECIMALS, (packed >> 224) & 255))
        assert convert(answer, uint256) <= unsafe_div(MAX_PRICE, scale), "oracle: answer too large"
        # updated_at <= block.timestamp (checked above): no underflow.
        if unsafe_sub(block.timestamp, updated_at) > (packed >> 160) & MASK_64:
            continue
        # answer <= MAX_PRICE / scale: the product is at most 1e36.
        value: uint256 = unsafe_mul(convert(answer, uint256), scale)
        # Insertion: shift the larger values up one place, then drop value into the gap.
        j: uint256 = m
        for _k: uint256 in range(MAX_SOURCES):
            if j == 0:
                break
            # 1 <= j <= m < MAX_SOURCES: j - 1 does not underflow.
            previous: uint256 = values[unsafe_sub(j, 1)]
            if previous <= value:
                break
            values[j] = previous
            j = unsafe_sub(j, 1)
        values[j] = value
        # m < n <= MAX_SOURCES: no overflow.
        m = unsafe_add(m, 1)
        oldest = min(oldest, updated_at)

    assert m >= counts >> 8 and m != 0, "oracle: too few fresh sources"
    # m >= 1 from here on; every value is in [1, 1e36].
    half: uint256 = m >> 1
    median: uint256 = values[half]
    if m & 1 == 0:
        # Two values <= 1e36: the sum cannot overflow; half >= 1 for even m >= 2.
        median = unsafe_add(values[unsafe_sub(half, 1)], median) >> 1
    # spread <= 1e36, so spread * 1e18 <= 1e54; median >= 1. Ratio rounded up.
    spread: uint256 = unsafe_sub(values[unsafe_sub(m, 1)], values[0])
    ratio: uint256 = unsafe_div(unsafe_add(unsafe_mul(spread, WAD), unsafe_sub(median, 1)), median)
    confidence: uint256 = 0
    if ratio < WAD:
        confidence = unsafe_sub(WAD, ratio)
    return median, confidence, oldest


@external
@view
def source_count() -> uint256:
    """
    @notice Number of configured sources.
    @return The count (<= 8).
    """
    return self._counts() & 255


@external
@view
def min_sources() -> uint256:
    """
    @notice How many fresh sources price() needs.
    @return The minimum (1 .. source_count()).
    """
    return self._counts() >> 8


@external
@view
def source(index: uint256) -> Source:
    """
    @notice A configured source. Reverts "oracle: no such source" for index >= source_count().
    @dev Removal moves the last source into the removed one's place, so indices can change.
    @param index Position in the source list.
    @return The feed, its heartbeat (seconds) and its cached decimals.
    """
    assert index < self._counts() & 255, "oracle: no such source"
    packed: uint256 = self._sources[index]
    return Source(
        feed=convert(packed & MASK_160, address),
        heartbeat=(packed >> 160) & MASK_64,
        decimals=convert((packed >> 224) & 255, uint8),
    )


# ---------------------------------------------------------------------------------------------
# Sequencer guard
# ---------------------------------------------------------------------------------------------


@external
@view
def sequencer_up() -> bool:
    """
    @notice Whether the L2 sequencer is up (always true when no sequencer feed is set).
    @dev Up iff the feed answers 0 with startedAt != 0; any other answer counts as down.
    @return True if up.
    """
    up: bool = False
    since: uint256 = 0
    up, since = self._sequencer_status()
    return up


@external
@view
def seconds_since_up() -> uint256:
    """
    @notice Seconds since the sequencer last came up: 0 while it is down (or if its startedAt
            lies in the future), max_value(uint256) when no sequencer feed is set.
    @return Seconds.
    """
    up: bool = False
    since: uint256 = 0
    up, since = self._sequencer_status()
    return since


@external
@view
def risk_increase_allowed() -> bool:
    """
    @notice Whether risk-increasing actions (fills, withdrawals, swaps) may proceed: the
            sequencer is up and more than grace_period seconds have passed since it came up.
    @return True if allowed.
    """
    return self._risk_increase_allowed()


@external
@view
def liquidation_threshold() -> int256:
    """
    @notice The MM health below which a liquidation auction may start: 0 normally,
            -grace_liquidation_buffer while the sequencer is down or within its grace period.
            Liquidation is allowed iff H_MM < liquidation_threshold().
    @return The threshold, a signed wad.
    """
    if self._risk_increase_allowed():
        return 0
    # buffer <= 1e30 < 2**255: the conversion cannot fail.
    return -convert(self.grace_liquidation_buffer, int256)


@external
@view
def sequencer_feed() -> address:
    """
    @notice The L2 sequencer-uptime feed, or empty(address) if none.
    @return The feed.
    """
    return convert(self._sequencer & MASK_160, address)


@external
@view
def grace_period() -> uint256:
    """
    @notice Seconds after the sequencer comes back before risk may increase.
    @return Seconds.
    """
    return self._sequencer >> 160


@internal
@view
def _sequencer_status() -> (bool, uint256):
    feed: address = convert(self._sequencer & MASK_160, address)
    if feed == empty(address):
        return True, max_value(uint256)
    round_id: uint80 = 0
    answer: int256 = 0
    started_at: uint256 = 0
    updated_at: uint256 = 0
    answered_in_round: uint80 = 0
    round_id, answer, started_at, updated_at, answered_in_round = staticcall IAggregatorV3(feed).latestRoundData()
    if answer != 0 or started_at == 0:
        return False, 0
    if started_at >= block.timestamp:
        return True, 0
    # started_at < block.timestamp: no underflow.
    return True, unsafe_sub(block.timestamp, started_at)


@internal
@view
def _risk_increase_allowed() -> bool:
    up: bool = False
    since: uint256 = 0
    up, since = self._sequencer_status()
    return up and since > self._sequencer >> 160


# ---------------------------------------------------------------------------------------------
# Owner: sources
# ---------------------------------------------------------------------------------------------


@external
def add_source(feed: address, heartbeat: uint256):
    """
    @notice Add a price source. Its decimals are read now and cached.
    @dev Owner only ("ownable: not owner"). Reverts "oracle: too many sources" (8 at most),
         "oracle: zero address", "oracle: duplicate source", "oracle: bad heartbeat" (not in
         1 .. 172800 s), "oracle: too many decimals" (more than 18).
    @param feed An AggregatorV3 feed.
    @param heartbeat Seconds after its updatedAt during which an answer counts as fresh.
    """
    ownable.check_owner()
    self._add_source(feed, heartbeat)


@external
def remove_source(feed: address):
    """
    @notice Remove a price source (the last source takes its index).
    @dev Owner only. Reverts "oracle: unknown source", or "oracle: below min_sources" when
         fewer than min_sources sources would remain (lower min_sources first).
    @param feed The feed to remove.
    """
    ownable.check_owner()
    counts: uint256 = self._counts()
    n: uint256 = counts & 255
    index: uint256 = self._index_of(feed)
    assert index < n, "oracle: unknown source"
    # n >= 1 since the feed was found.
    last: uint256 = unsafe_sub(n, 1)
    assert last >= counts >> 8, "oracle: below min_sources"
    self._sources[index] = self._sources[last]
    self._sources[last] = 0
    # The count drops by one; min_sources is unchanged. (last >= min_sources >= 1: the first
    # slot keeps its source; its counts are rewritten here.)
    self._store_counts(unsafe_sub(counts, 1))
    log SourceRemoved(feed=feed)


@external
def set_heartbeat(feed: address, heartbeat: uint256):
    """
    @notice Change the heartbeat of a configured source.
    @dev Owner only. Reverts "oracle: unknown source" or "oracle: bad heartbeat".
    @param feed The source.
    @param heartbeat New staleness bound, seconds (1 .. 172800).
    """
    ownable.check_owner()
    index: uint256 = self._index_of(feed)
    assert index < self._counts() & 255, "oracle: unknown source"
    assert heartbeat != 0 and heartbeat <= MAX_HEARTBEAT, "oracle: bad heartbeat"
    packed: uint256 = self._sources[index]
    old: uint256 = (packed >> 160) & MASK_64
    self._sources[index] = (packed & ~(MASK_64 << 160)) | (heartbeat << 160)
    log SourceHeartbeatSet(feed=feed, old_heartbeat=old, new_heartbeat=heartbeat)


@external
def set_min_sources(min_sources_: uint256):
    """
    @notice Set how many fresh sources price() needs.
    @dev Owner only. Reverts "oracle: bad min_sources" unless 1 <= min_sources_ <=
         source_count(). Use at least 3 for resistance to one manipulated source.
    @param min_sources_ The new minimum.
    """
    ownable.check_owner()
    self._set_min_sources(min_sources_)


# ---------------------------------------------------------------------------------------------
# Owner: sequencer guard
# ---------------------------------------------------------------------------------------------


@external
def set_sequencer_feed(feed: address):
    """
    @notice Set the L2 sequencer-uptime feed; empty(address) means no L2 sequencer.
    @dev Owner only. Reverts "oracle: not a sequencer feed" unless the feed reports 0
         decimals (as Chainlink's uptime feeds do).
    @param feed The uptime feed, or empty(address).
    """
    ownable.check_owner()
    self._set_sequencer_feed(feed)


@external
def set_grace_period(grace_period_: uint256):
    """
    @notice Set the grace period after the sequencer comes back.
    @dev Owner only. Reverts "oracle: grace period too long" above 86400 seconds.
    @param grace_period_ Seconds.
    """
    ownable.check_owner()
    self._set_grace_period(grace_period_)


@external
def set_grace_liquidation_buffer(buffer: uint256):
    """
    @notice Set the health buffer used while the sequencer is down or in grace.
    @dev Owner only. Reverts "oracle: buffer too large" above 1e30.
    @param buffer A wad of the cash asset; liquidation then needs H_MM < -buffer.
    """
    ownable.check_owner()
    self._set_grace_liquidation_buffer(buffer)


# ---------------------------------------------------------------------------------------------
# Internal
# ---------------------------------------------------------------------------------------------


@internal
@view
def _counts() -> uint256:
    """count | min_sources << 8, from the first source's slot."""
    return self._sources[0] >> COUNTS_SHIFT


@internal
def _store_counts(counts: uint256):
    # counts < 2**16: it fits bits 232..247 above the first source's fields.
    self._sources[0] = (self._sources[0] & SOURCE_BITS) | (counts << COUNTS_SHIFT)


@internal
@view
def _index_of(feed: address) -> uint256:
    """Index of `feed` in the source list, or MAX_SOURCES if absent."""
    for i: uint256 in range(self._counts() & 255, bound=MAX_SOURCES):
        if convert(self._sources[i] & MASK_160, address) == feed:
            return i
    return MAX_SOURCES


@internal
def _add_source(feed: address, heartbeat: uint256):
    counts: uint256 = self._counts()
    n: uint256 = counts & 255
    assert n < MAX_SOURCES, "oracle: too many sources"
    assert feed != empty(address), "oracle: zero address"
    assert self._index_of(feed) == MAX_SOURCES, "oracle: duplicate source"
    assert heartbeat != 0 and heartbeat <= MAX_HEARTBEAT, "oracle: bad heartbeat"
    decimals: uint8 = staticcall IAggregatorV3(feed).decimals()
    assert convert(decimals, uint256) <= MAX_DECIMALS, "oracle: too many decimals"
    self._sources[n] = convert(feed, uint256) | (heartbeat << 160) | (convert(decimals, uint256) << 224)
    # n < MAX_SOURCES: the count stays within its 8 bits. (For n == 0 the write above
    # cleared the counts in the first slot; this restores them.)
    self._store_counts(unsafe_add(counts, 1))
    log SourceAdded(feed=feed, heartbeat=heartbeat, decimals=decimals)


@internal
def _set_min_sources(min_sources_: uint256):
    counts: uint256 = self._counts()
    assert min_sources_ != 0 and min_sources_ <= counts & 255, "oracle: bad min_sources"
    log MinSourcesSet(old_min_sources=counts >> 8, new_min_sources=min_sources_)
    self._store_counts((counts & 255) | (min_sources_ << 8))


@internal
def _set_sequencer_feed(feed: address):
    if feed != empty(address):
        assert staticcall IAggregatorV3(feed).decimals() == 0, "oracle: not a sequencer feed"
    packed: uint256 = self._sequencer
    log SequencerFeedSet(old_feed=convert(packed & MASK_160, address), new_feed=feed)
    self._sequencer = (packed & ~MASK_160) | convert(feed, uint256)


@internal
def _set_grace_period(grace_period_: uint256):
    assert grace_period_ <= MAX_GRACE_PERIOD, "oracle: grace period too long"
    packed: uint256 = self._sequencer
    log GracePeriodSet(old_grace_period=packed >> 160, new_grace_period=grace_period_)
    self._sequencer = (packed & MASK_160) | (grace_period_ << 160)


@internal
def _set_grace_liquidation_buffer(buffer: uint256):
    assert buffer <= MAX_GRACE_LIQUIDATION_BUFFER, "oracle: buffer too large"
    log GraceLiquidationBufferSet(old_buffer=self.grace_liquidation_buffer, new_buffer=buffer)
    self.grace_liquidation_buffer = buffer
