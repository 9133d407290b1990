# pragma version ~=0.4.3
# pragma optimize gas
"""
@title OracleAggregator: median spot price of several feeds, settlement prices, sequencer guard
@license MIT
@notice Price: up to 8 sources behind the Chainlink AggregatorV3 interface (Chainlink feeds,
        PoolTwapFeed over Kappa's pools), each with its own heartbeat and decimals. `price()`
        reads every source and returns

            median_wad       the median of the usable answers, normalised to 18 decimals
                             (an even count takes the mean of the middle two, rounded down);
            confidence_wad   1 - spread / median, floored at 0, where spread is taken over the
                             answers that agree with the median (below); the ratio is rounded
                             up, so the confidence is rounded down (conservative for margin);
            oldest_timestamp the oldest `updatedAt` among the answers used.

        Usable answers. A source is read with a static call of at most SOURCE_GAS gas that
        cannot revert this contract (a failed call is reverted with "oracle: out of gas" only
        when the gas left shows the caller starved it, so a caller cannot drop a source by
        choosing its gas limit); it is usable when its round is well-formed and fresh
        (block.timestamp - updatedAt <= its heartbeat). Anything else is skipped, never used,
        and reported by `source_status()`:
            STATUS_FRESH (0)      well-formed and fresh: used;
            STATUS_STALE (1)      well-formed, older than the heartbeat;
            STATUS_MALFORMED (2)  returned data that is not a round (wrong length, ids above
                                  uint80), an incomplete round (updatedAt == 0 or
                                  answeredInRound < roundId), a future updatedAt, an answer
                                  <= 0, or a normalised answer above 1e36 (the price domain
                                  of the math library);
            STATUS_REVERTING (3)  latestRoundData reverted or ran out of its gas allowance;
            STATUS_DECIMALS (4)   fresh and well-formed, so price() uses it, but decimals()
                                  no longer returns the value cached by add_source (or
                                  reverts): its answers are mis-scaled by a power of ten; the
                                  owner should remove and re-add it. price() does not re-read
                                  decimals (gas); a mis-scaled answer is an outlier the median
                                  rejects while the other sources are sound.
        `price()` reverts "oracle: too few fresh sources" only when fewer than `min_sources`
        sources are usable, so one broken feed cannot stop liquidations.

        Confidence rule. Sort the m usable answers and take the tightest strict majority:
        the q = floor(m / 2) + 1 consecutive sorted answers with the smallest max - min. Every
        window of q consecutive answers contains the median position (both middle positions
        for even m), so these are the answers that agree with the median, and an outlier the
        median rejects is not in it. confidence = max(0, 1 - spread / median) over them.
        Bound: let k answers be bad (any value) and the other m - k honest, with
        k <= floor((m - 1) / 2). The honest answers span positions a..b of the sorted list
        with b - a + 1 >= m - k >= q, so the window starting at a lies inside [min H, max H]:
        spread <= max H - min H, and the median lies in [min H, max H]. Hence
            confidence >= 1 - (max H - min H) / median >= 1 - (max H - min H) / min H:
        bad sources cannot lower the confidence below the honest answers' own agreement
        (one source at 1.5x spot next to two honest answers at spot leaves it at 1). They can
        raise it, up to 1 (bad answers placed next to one honest answer form a tight
        majority), which hides at most the honest answers' disagreement; they cannot move the
        median outside [min H, max H]. With k > floor((m - 1) / 2) nothing is bounded.

        Manipulation resistance: with f sources controlled by an attacker, the median stays
        within [min, max] of the honest usable answers as long as at least 2f + 1 answers are
        used. Against one bad source that needs min_sources >= 3; the contract accepts smaller
        values (testnets with one feed) and leaves that choice to the owner. A feed can be
        added once only (a duplicate would count twice in the median).

        Settlement (`settlement_price(expiry, hints)`): a price fixed by data dated at the
        expiry, never by the moment of the call. Per source, the first round of its current
        phase updated at or after the expiry, proven by the caller's round-id hint as Opyn's
        Chainlink pricer does: getRoundData(hint).updatedAt >= expiry and
        getRoundData(hint - 1).updatedAt < expiry; then the median of those rounds' answers.
        Round ids: Chainlink proxies use phaseId << 64 | aggregatorRoundId, contiguous within
        a phase, and updatedAt does not decrease within a phase. Accepted: a hint in the phase
        of the source's latest round, at most that round, with aggregatorRoundId >= 2 (its
        predecessor is hint - 1 in the same phase). A phase whose round 1 is already at or
        after the expiry has no provable first round: the source counts as missing. Earlier
        phases are not considered, so a later phase change by the feed's owner can change
        which round is first. A source counts as missing while its latest round is older
        than the expiry, malformed or reverting, and as left out when its first round is
        malformed or updated after expiry + settlement_timeout. Before that deadline passes
        a missing source makes the call revert ("oracle: settlement source pending"), so the
        caller cannot choose the moment by settling while a source is slow; after it, missing
        sources are left out while min_sources remain. Given the feeds' data every caller
        gets the same answer at any time after the deadline. Bound: the honest sources'
        first rounds are fixed; k <= floor((m - 1) / 2) bad sources among the m rounds used
        keep the median within [min, max] of the honest rounds. A bad source can still choose
        to be in or out (withhold, publish a round back-dated into the window, break its
        feed): each choice keeps the median in that range. A source without round history
        (PoolTwapFeed: its round is computed live and only the latest is answered, so no
        round can be proven to be dated at the expiry) must be marked by the owner with
        `set_round_history(feed, False)`; it then takes no part in settlement. An unmarked
        one makes settlement revert "oracle: bad settlement hint" once it is fresh.

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

        Roles: one owner (two-step transfer) manages sources, min_sources, the settlement
        timeout and the guard parameters, each change with an event. The guard lives in this
        contract (DESIGN.md layout) so the engine asks one address for both the price and the
        uptime status.
"""

from contracts.auth import ownable
from contracts.math import wad
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

event SettlementTimeoutSet:
    old_timeout: uint256
    new_timeout: uint256

event RoundHistorySet:
    feed: indexed(address)
    available: bool

MAX_SOURCES: constant(uint256) = 8
MAX_DECIMALS: constant(uint256) = 18
# Staleness bound of a source: 1 second to 2 days (Chainlink heartbeats go up to 1 day; the
# owner sets the feed's heartbeat plus a margin).
MAX_HEARTBEAT: constant(uint256) = 2 * 86400
# Largest normalised price: 1e18 quote units per unit, the domain of contracts/math/black76.vy.
MAX_PRICE: constant(uint256) = 10**36
WAD: constant(uint256) = wad.UWAD
# Grace period after the sequencer comes back: at most 1 day (Chainlink suggests 1 hour).
MAX_GRACE_PERIOD: constant(uint256) = 86400
# Grace liquidation buffer, in health units (wad of the cash asset): at most 1e12 units.
MAX_GRACE_LIQUIDATION_BUFFER: constant(uint256) = 10**30
# Settlement timeout: how long after an expiry a source may take to publish its first round.
# Set it above the longest heartbeat, so a healthy feed always makes it.
DEFAULT_SETTLEMENT_TIMEOUT: constant(uint256) = 3600
MIN_SETTLEMENT_TIMEOUT: constant(uint256) = 60
MAX_SETTLEMENT_TIMEOUT: constant(uint256) = MAX_HEARTBEAT
# Gas allowance of one call into a source: a Chainlink proxy read costs a small fraction of
# it; a source that burns it is reported as reverting instead of starving the caller.
SOURCE_GAS: constant(uint256) = 100_000
# Gas left after a failed source call below which the failure may be the caller's doing.
STARVED_GAS: constant(uint256) = SOURCE_GAS // 32
# A round as AggregatorV3 returns it: five words.
ROUND_BYTES: constant(uint256) = 160

STATUS_FRESH: constant(uint8) = 0
STATUS_STALE: constant(uint8) = 1
STATUS_MALFORMED: constant(uint8) = 2
STATUS_REVERTING: constant(uint8) = 3
STATUS_DECIMALS: constant(uint8) = 4

# A source packed in one slot (one cold read per source in price()):
# feed (bits 0..159) | heartbeat << 160 (bits 160..223) | decimals << 224 (bits 224..231)
# | NO_HISTORY (bit 248: the source has no round history and takes no part in settlement).
MASK_160: constant(uint256) = 2**160 - 1
MASK_64: constant(uint256) = 2**64 - 1
MASK_80: constant(uint256) = 2**80 - 1
# The first source's slot also holds the counts (bits 232..247): count (its low 8 bits) and
# min_sources (the next 8), both <= MAX_SOURCES. price() reads them with the first source.
COUNTS_SHIFT: constant(uint256) = 232
COUNTS_MASK: constant(uint256) = 2**16 - 1
NO_HISTORY: constant(uint256) = 1 << 248

# The sources in use are _sources[0 .. count); the counts live in _sources[0] (see
# COUNTS_SHIFT). 1 <= min_sources <= count at all times (after construction).
_sources: uint256[MAX_SOURCES]

# The sequencer-uptime feed (bits 0..159) and the grace period (bits 160..): the two values
# every guard check reads, in one slot. grace_period <= MAX_GRACE_PERIOD < 2**96.
_sequencer: uint256
grace_liquidation_buffer: public(uint256)
# Seconds after an expiry within which a source's first round must be dated to settle it.
settlement_timeout: public(uint256)


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
         reasons); "oracle: length mismatch" when feeds and heartbeats differ in length. The
         settlement timeout starts at one hour (set_settlement_timeout changes it); every
         source starts with round history (set_round_history marks a PoolTwapFeed).
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
    self._set_settlement_timeout(DEFAULT_SETTLEMENT_TIMEOUT)


# ---------------------------------------------------------------------------------------------
# Price
# ---------------------------------------------------------------------------------------------


@external
@view
def price() -> (uint256, uint256, uint256):
    """
    @notice The median price of the usable sources, a confidence and the oldest time used.
    @dev A source that is stale, malformed or reverting is skipped (see the contract notice
         and source_status()). Reverts "oracle: too few fresh sources" only when fewer than
         min_sources sources are usable. Gas grows by one cold call into each source
         (bench/gas_oracle.py measures it over three).
    @return median_wad Median of the usable normalised answers (wad, rounded down).
    @return confidence_wad max(0, 1 - spread / median), spread = max - min of the tightest
            strict majority of the sorted answers (wad, rounded down).
    @return oldest_timestamp The smallest updatedAt among the answers used.
    """
    first: uint256 = self._sources[0]
    counts: uint256 = (first >> COUNTS_SHIFT) & COUNTS_MASK
    n: uint256 = counts & 255
    # The usable answers, kept sorted ascending by insertion; m of them so far.
    values: uint256[MAX_SOURCES] = empty(uint256[MAX_SOURCES])
    m: uint256 = 0
    oldest: uint256 = max_value(uint256)
    for i: uint256 in range(n, bound=MAX_SOURCES):
        packed: uint256 = first
        if i != 0:
            packed = self._sources[i]
        status: uint8 = 0
        value: uint256 = 0
        updated_at: uint256 = 0
        status, value, updated_at = self._read_latest(packed)
        if status != STATUS_FRESH:
            continue
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
    median: uint256 = self._median(values, m)
    # The tightest strict majority: q = floor(m / 2) + 1 consecutive sorted answers, the
    # windows starting at 0 .. m - q (m >= 1, so 1 <= q <= m and no index underflows).
    q: uint256 = unsafe_add(m >> 1, 1)
    spread: uint256 = unsafe_sub(values[unsafe_sub(q, 1)], values[0])
    for start: uint256 in range(1, MAX_SOURCES):
        if unsafe_add(start, q) > m:
            break
        spread = min(spread, unsafe_sub(values[unsafe_sub(unsafe_add(start, q), 1)], values[start]))
    # spread <= 1e36, so spread * 1e18 <= 1e54; median >= 1. Ratio rounded up.
    ratio: uint256 = unsafe_div(unsafe_add(unsafe_mul(spread, WAD), unsafe_sub(median, 1)), median)
    confidence: uint256 = 0
    if ratio < WAD:
        confidence = unsafe_sub(WAD, ratio)
    return median, confidence, oldest


@external
@view
def source_status() -> DynArray[uint8, MAX_SOURCES]:
    """
    @notice The state of every source as price() sees it now, in source order, for keepers
            to watch: STATUS_FRESH 0 (used), STATUS_STALE 1, STATUS_MALFORMED 2,
            STATUS_REVERTING 3 (all skipped), STATUS_DECIMALS 4 (used by price(), but the
            feed's decimals() differs from the cached value or reverts).
    @dev Codes 1..3 as in the contract notice; code 4 is reported only for a source that is
         otherwise fresh.
    @return One code per configured source.
    """
    out: DynArray[uint8, MAX_SOURCES] = []
    for i: uint256 in range(self._counts() & 255, bound=MAX_SOURCES):
        packed: uint256 = self._sources[i]
        status: uint8 = 0
        value: uint256 = 0
        updated_at: uint256 = 0
        status, value, updated_at = self._read_latest(packed)
        if status == STATUS_FRESH:
            ok: bool = False
            response: Bytes[32] = b""
            ok, response = raw_call(
                convert(packed & MASK_160, address),
                method_id("decimals()"),
                max_outsize=32,
                gas=SOURCE_GAS,
                is_static_call=True,
                revert_on_failure=False,
            )
            if not ok or len(response) != 32 or convert(response, uint256) != (packed >> 224) & 255:
                status = STATUS_DECIMALS
        out.append(status)
    return out


# ---------------------------------------------------------------------------------------------
# Settlement
# ---------------------------------------------------------------------------------------------


@external
@view
def settlement_price(expiry: uint256, hints: DynArray[uint80, MAX_SOURCES]) -> uint256:
    """
    @notice The settlement price of `expiry`: the median of each source's first round
            updated at or after the expiry (see "Settlement" in the contract notice).
    @dev hints[i] is the round id of source i's first round at or after the expiry; it is
         ignored for a source that is missing (latest round older than the expiry,
         malformed or reverting) or has no round history. keeper/settlement.py finds the
         hints from a feed's round history. A source is left out when its first round is
         malformed or dated after expiry + settlement_timeout, or, once that deadline has
         passed, when it is missing. min_sources applies to the sources with round history.
         Reverts "oracle: not expired" before the expiry,
         "oracle: one hint per source" unless len(hints) == source_count(), "oracle: bad
         settlement hint" when a source has a round at or after the expiry in its current
         phase and hints[i] is not the first one, "oracle: settlement source pending" while
         a source is missing before the deadline, "oracle: too few settlement sources" when
         fewer than min_sources rounds remain.
    @param expiry The expiry, a unix time.
    @param hints One round id per source, in source order.
    @return The median of the sources' first rounds at or after the expiry (wad).
    """
    assert block.timestamp >= expiry, "oracle: not expired"
    counts: uint256 = self._counts()
    n: uint256 = counts & 255
    assert len(hints) == n, "oracle: one hint per source"
    deadline: uint256 = expiry + self.settlement_timeout
    values: uint256[MAX_SOURCES] = empty(uint256[MAX_SOURCES])
    m: uint256 = 0
    for i: uint256 in range(n, bound=MAX_SOURCES):
        packed: uint256 = self._sources[i]
        if packed & NO_HISTORY != 0:
            continue
        used: bool = False
        value: uint256 = 0
        used, value = self._first_round_at(packed, expiry, convert(hints[i], uint256), deadline)
        if used:
            values = self._insert(values, m, value)
            m += 1
    assert m >= counts >> 8 and m != 0, "oracle: too few settlement sources"
    return self._median(values, m)


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


@external
def set_settlement_timeout(timeout: uint256):
    """
    @notice Set how long after an expiry a source may take to publish its first round
            before settlement_price() leaves it out.
    @dev Owner only. Reverts "oracle: bad settlement timeout" outside 60 .. 172800 seconds.
         Set it above the longest source heartbeat, so that a healthy feed always has a
         round within it.
    @param timeout Seconds after the expiry.
    """
    ownable.check_owner()
    self._set_settlement_timeout(timeout)


@external
def set_round_history(feed: address, available: bool):
    """
    @notice Mark whether a source has a round history that settlement can prove rounds in.
    @dev Owner only. Reverts "oracle: unknown source". Mark every PoolTwapFeed `False`: it
         answers only its live latest round, so it takes no part in settlement (an unmarked
         one makes settlement_price() revert "oracle: bad settlement hint").
    @param feed The source.
    @param available True for a Chainlink-style feed (the default), False to leave it out of
           settlement.
    """
    ownable.check_owner()
    index: uint256 = self._index_of(feed)
    assert index < self._counts() & 255, "oracle: unknown source"
    packed: uint256 = self._sources[index]
    if available:
        packed = packed & ~NO_HISTORY
    else:
        packed = packed | NO_HISTORY
    self._sources[index] = packed
    log RoundHistorySet(feed=feed, available=available)


@external
@view
def round_history(index: uint256) -> bool:
    """
    @notice Whether a source takes part in settlement (it has a provable round history).
    @dev Reverts "oracle: no such source" for index >= source_count().
    @param index Position in the source list.
    @return True unless the owner marked it with set_round_history(feed, False).
    """
    assert index < self._counts() & 255, "oracle: no such source"
    return self._sources[index] & NO_HISTORY == 0


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
    return (self._sources[0] >> COUNTS_SHIFT) & COUNTS_MASK


@internal
def _store_counts(counts: uint256):
    # counts < 2**16: it fits bits 232..247, between the first source's fields and its flag.
    self._sources[0] = (self._sources[0] & ~(COUNTS_MASK << COUNTS_SHIFT)) | (counts << COUNTS_SHIFT)


@internal
@view
def _read_latest(packed: uint256) -> (uint8, uint256, uint256):
    """(status, value, updatedAt) of a source's latest round; value is 0 unless it is
    well-formed (fresh or stale)."""
    ok: bool = False
    response: Bytes[ROUND_BYTES] = b""
    ok, response = raw_call(
        convert(packed & MASK_160, address),
        method_id("latestRoundData()"),
        max_outsize=ROUND_BYTES,
        gas=SOURCE_GAS,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not ok:
        # A source that got its whole allowance leaves at least 1/63 of it here (the 63/64
        # rule); less means the caller starved it, which must not drop it from the median.
        assert msg.gas >= STARVED_GAS, "oracle: out of gas"
        return STATUS_REVERTING, 0, 0
    # The checks of _parse, written out here: price() runs them for every source.
    if len(response) != ROUND_BYTES:
        return STATUS_MALFORMED, 0, 0
    round_id: uint256 = convert(extract32(response, 0), uint256)
    answer: int256 = convert(extract32(response, 32), int256)
    updated_at: uint256 = convert(extract32(response, 96), uint256)
    answered_in_round: uint256 = convert(extract32(response, 128), uint256)
    if round_id > MASK_80 or answered_in_round > MASK_80 or answered_in_round < round_id:
        return STATUS_MALFORMED, 0, 0
    if updated_at == 0 or updated_at > block.timestamp or answer <= 0:
        return STATUS_MALFORMED, 0, 0
    # decimals <= 18 (checked when added): the scale is at most 1e18, no overflow.
    scale: uint256 = pow_mod256(10, unsafe_sub(MAX_DECIMALS, (packed >> 224) & 255))
    if convert(answer, uint256) > unsafe_div(MAX_PRICE, scale):
        return STATUS_MALFORMED, 0, 0
    # answer <= MAX_PRICE / scale: the product is at most 1e36.
    value: uint256 = unsafe_mul(convert(answer, uint256), scale)
    # updated_at <= block.timestamp (checked above): no underflow.
    if unsafe_sub(block.timestamp, updated_at) > (packed >> 160) & MASK_64:
        return STATUS_STALE, value, updated_at
    return STATUS_FRESH, value, updated_at


@internal
@view
def _round(feed: address, round_id: uint256, packed: uint256) -> (uint256, uint256, uint256):
    """getRoundData(round_id) as _parse reads it; (0, 0, 0) when the call fails.
    round_id <= MASK_80 (the callers' hints are uint80)."""
    ok: bool = False
    response: Bytes[ROUND_BYTES] = b""
    ok, response = raw_call(
        feed,
        abi_encode(convert(round_id, uint80), method_id=method_id("getRoundData(uint80)")),
        max_outsize=ROUND_BYTES,
        gas=SOURCE_GAS,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not ok:
        assert msg.gas >= STARVED_GAS, "oracle: out of gas"
        return 0, 0, 0
    return self._parse(response, packed)


@internal
@view
def _parse(response: Bytes[ROUND_BYTES], packed: uint256) -> (uint256, uint256, uint256):
    """(roundId, value, updatedAt) of an AggregatorV3 round. value is the answer normalised
    to a wad, or 0 when the round is malformed: not five words ((0, 0, 0) then), ids above
    uint80, incomplete (updatedAt == 0 or answeredInRound < roundId), answer <= 0, or a
    value above MAX_PRICE. The time checks are the caller's."""
    if len(response) != ROUND_BYTES:
        return 0, 0, 0
    round_id: uint256 = convert(extract32(response, 0), uint256)
    answer: int256 = convert(extract32(response, 32), int256)
    updated_at: uint256 = convert(extract32(response, 96), uint256)
    answered_in_round: uint256 = convert(extract32(response, 128), uint256)
    if round_id > MASK_80 or answered_in_round > MASK_80:
        return round_id, 0, updated_at
    if updated_at == 0 or answered_in_round < round_id or answer <= 0:
        return round_id, 0, updated_at
    # decimals <= 18 (checked when added): the scale is at most 1e18, no overflow.
    scale: uint256 = pow_mod256(10, unsafe_sub(MAX_DECIMALS, (packed >> 224) & 255))
    if convert(answer, uint256) > unsafe_div(MAX_PRICE, scale):
        return round_id, 0, updated_at
    # answer <= MAX_PRICE / scale: the product is at most 1e36.
    return round_id, unsafe_mul(convert(answer, uint256), scale), updated_at


@internal
@view
def _first_round_at(packed: uint256, expiry: uint256, hint: uint256, deadline: uint256) -> (bool, uint256):
    """(used, value) of one source for settlement_price (see the contract notice)."""
    feed: address = convert(packed & MASK_160, address)
    timed_out: bool = block.timestamp > deadline
    latest_id: uint256 = 0
    value: uint256 = 0
    updated_at: uint256 = 0
    ok: bool = False
    response: Bytes[ROUND_BYTES] = b""
    ok, response = raw_call(
        feed,
        method_id("latestRoundData()"),
        max_outsize=ROUND_BYTES,
        gas=SOURCE_GAS,
        is_static_call=True,
        revert_on_failure=False,
    )
    assert ok or msg.gas >= STARVED_GAS, "oracle: out of gas"
    if ok:
        latest_id, value, updated_at = self._parse(response, packed)
    if not ok or value == 0 or updated_at > block.timestamp or updated_at < expiry:
        # Missing: no round at or after the expiry yet, or the source is broken now.
        assert timed_out, "oracle: settlement source pending"
        return False, 0
    # The latest round is at or after the expiry: the hint must prove the first one of its
    # phase (phase = the round id's bits above 64).
    assert hint >> 64 == latest_id >> 64 and hint <= latest_id and hint & MASK_64 != 0, "oracle: bad settlement hint"
    round_id: uint256 = 0
    first_value: uint256 = 0
    first_at: uint256 = 0
    round_id, first_value, first_at = self._round(feed, hint, packed)
    assert round_id == hint and first_at >= expiry, "oracle: bad settlement hint"
    if hint & MASK_64 == 1:
        # Round 1 of the phase is at or after the expiry: no round of this phase is dated
        # before it, so none can be proven first.
        assert timed_out, "oracle: settlement source pending"
        return False, 0
    previous_id: uint256 = 0
    previous_value: uint256 = 0
    previous_at: uint256 = 0
    # hint & MASK_64 >= 2: the predecessor is in the same phase.
    previous_id, previous_value, previous_at = self._round(feed, unsafe_sub(hint, 1), packed)
    assert previous_id == unsafe_sub(hint, 1) and previous_at < expiry, "oracle: bad settlement hint"
    if first_at > deadline:
        # Published too late (or dated in the future beyond the deadline): left out.
        return False, 0
    # A round dated in the future but within the deadline is not a round yet.
    assert first_at <= block.timestamp, "oracle: settlement source pending"
    return first_value != 0, first_value


@internal
@pure
def _insert(values: uint256[MAX_SOURCES], m: uint256, x: uint256) -> uint256[MAX_SOURCES]:
    """values[0 .. m) sorted ascending with x inserted (m < MAX_SOURCES)."""
    out: uint256[MAX_SOURCES] = values
    j: uint256 = m
    for _k: uint256 in range(MAX_SOURCES):
        if j == 0:
            break
        if out[j - 1] <= x:
            break
        out[j] = out[j - 1]
        j -= 1
    out[j] = x
    return out


@internal
@pure
def _median(values: uint256[MAX_SOURCES], m: uint256) -> uint256:
    """The median of values[0 .. m), sorted ascending, 1 <= m <= MAX_SOURCES, every value
    <= MAX_PRICE; an even count takes the mean of the middle two, rounded down."""
    half: uint256 = m >> 1
    median: uint256 = values[half]
    if m & 1 == 0:
        # Two values <= 1e36: the sum cannot overflow; half >= 1 for even m >= 2.
        median = unsafe_add(values[unsafe_sub(half, 1)], median) >> 1
    return median


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
def _set_settlement_timeout(timeout: uint256):
    assert timeout >= MIN_SETTLEMENT_TIMEOUT and timeout <= MAX_SETTLEMENT_TIMEOUT, "oracle: bad settlement timeout"
    log SettlementTimeoutSet(old_timeout=self.settlement_timeout, new_timeout=timeout)
    self.settlement_timeout = timeout


@internal
def _set_grace_liquidation_buffer(buffer: uint256):
    assert buffer <= MAX_GRACE_LIQUIDATION_BUFFER, "oracle: buffer too large"
    log GraceLiquidationBufferSet(old_buffer=self.grace_liquidation_buffer, new_buffer=buffer)
    self.grace_liquidation_buffer = buffer
