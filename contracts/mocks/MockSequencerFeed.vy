# pragma version ~=0.4.3
# pragma optimize gas
"""
@title MockSequencerFeed: a Chainlink L2 sequencer-uptime feed whose status anyone can set
@license MIT
@notice FOR LOCAL CHAINS AND TESTS ONLY: anyone can flip the status. Never deploy it to a
        public network.

        Chainlink's sequencer-uptime feeds speak AggregatorV3 with `decimals() == 0`: answer 0
        means the sequencer is up, 1 that it is down, and `startedAt` is the time of the last
        status change. This mock reproduces that behaviour: `set_status(down)` opens a new
        round (startedAt = updatedAt = now) only when the status changes, and merely refreshes
        updatedAt otherwise, as the real feed does. `set_round_data(...)` writes arbitrary
        fields (e.g. startedAt == 0, which Arbitrum reports before the feed is initialised).

        Storage layout matches MockAggregatorV3: the status in one slot, roundId |
        answeredInRound << 80 | startedAt << 160 | updatedAt << 208 in another.
"""

from contracts.interfaces import IAggregatorV3

implements: IAggregatorV3

event StatusUpdated:
    status: indexed(int256)
    roundId: indexed(uint256)
    startedAt: uint256

VERSION: constant(uint256) = 1
MASK_80: constant(uint256) = 2**80 - 1
MASK_48: constant(uint256) = 2**48 - 1

_status: int256
_meta: uint256
_round_status: HashMap[uint80, int256]
_round_meta: HashMap[uint80, uint256]


@deploy
def __init__(down: bool):
    """
    @notice Deploy the feed with round 1 reporting `down` (1) or up (0) since now.
    @param down True if the sequencer starts out down.
    """
    status: int256 = 0
    if down:
        status = 1
    self._set(1, status, block.timestamp, block.timestamp, 1)


@external
@view
def decimals() -> uint8:
    """
    @notice 0, as Chainlink's sequencer-uptime feeds.
    @return 0.
    """
    return 0


@external
@view
def description() -> String[256]:
    """
    @notice Feed description.
    @return "L2 Sequencer Uptime Status Feed".
    """
    return "L2 Sequencer Uptime Status Feed"


@external
@view
def version() -> uint256:
    """
    @notice Interface version.
    @return 1.
    """
    return VERSION


@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice The latest status round.
    @return (roundId, status (0 up, 1 down), startedAt (last status change), updatedAt,
            answeredInRound).
    """
    return self._unpack(self._status, self._meta)


@external
@view
def getRoundData(_roundId: uint80) -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice A past status round. Reverts "mock: no data present" for a round never set.
    @param _roundId The round id.
    @return (roundId, status, startedAt, updatedAt, answeredInRound).
    """
    meta: uint256 = self._round_meta[_roundId]
    assert meta != 0, "mock: no data present"
    return self._unpack(self._round_status[_roundId], meta)


@external
def set_status(down: bool):
    """
    @notice Report the sequencer down (true) or up (false) as of now. A change of status opens
            a new round with startedAt = now; an unchanged status only refreshes updatedAt.
    @param down True for down (answer 1), false for up (answer 0).
    """
    status: int256 = 0
    if down:
        status = 1
    meta: uint256 = self._meta
    round_id: uint80 = convert(meta & MASK_80, uint80)
    if status == self._status:
        self._set(round_id, status, (meta >> 160) & MASK_48, block.timestamp, round_id)
    else:
        self._set(round_id + 1, status, block.timestamp, block.timestamp, round_id + 1)


@external
def set_round_data(
    round_id: uint80, status: int256, started_at: uint256, updated_at: uint256, answered_in_round: uint80
):
    """
    @notice Overwrite the latest round with arbitrary fields (edge-case tests).
    @dev Reverts "mock: timestamp too large" when a timestamp does not fit 48 bits.
    @param round_id roundId.
    @param status answer (0 up, 1 down; anything else to test consumers).
    @param started_at startedAt.
    @param updated_at updatedAt.
    @param answered_in_round answeredInRound.
    """
    self._set(round_id, status, started_at, updated_at, answered_in_round)


@internal
def _set(round_id: uint80, status: int256, started_at: uint256, updated_at: uint256, answered_in_round: uint80):
    assert started_at <= MASK_48 and updated_at <= MASK_48, "mock: timestamp too large"
    meta: uint256 = (
        convert(round_id, uint256)
        | (convert(answered_in_round, uint256) << 80)
        | (started_at << 160)
        | (updated_at << 208)
    )
    self._status = status
    self._meta = meta
    self._round_status[round_id] = status
    self._round_meta[round_id] = meta
    log StatusUpdated(status=status, roundId=convert(round_id, uint256), startedAt=started_at)


@internal
@pure
def _unpack(status: int256, meta: uint256) -> (uint80, int256, uint256, uint256, uint80):
    return (
        convert(meta & MASK_80, uint80),
        status,
        (meta >> 160) & MASK_48,
        meta >> 208,
        convert((meta >> 80) & MASK_80, uint80),
    )
