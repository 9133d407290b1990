# pragma version ~=0.4.3
# pragma optimize gas
"""
@title MockAggregatorV3: a Chainlink-style price feed whose rounds anyone can set
@license MIT
@notice FOR LOCAL CHAINS AND TESTS ONLY: anyone can set the answer. Never deploy it to a
        public network. It implements the AggregatorV3 read interface exactly, so an
        OracleAggregator treats it like a Chainlink feed.

        `set_answer(answer)` opens and completes a new round now (roundId + 1, startedAt =
        updatedAt = block.timestamp, answeredInRound = roundId), like a healthy feed.
        `set_round_data(...)` writes every field of the latest round verbatim, so tests can
        build stale, incomplete, future-dated or non-positive rounds.

        Round history: every round set either way stays readable by `getRoundData`, so a test
        builds a feed's history (rounds before and after an expiry, phase ids
        phaseId << 64 | aggregatorRoundId, gaps) for OracleAggregator.settlement_price, which
        reads a source's first round at or after an expiry and the round before it.

        Storage layout (gas): the latest answer takes one slot and the other four fields are
        packed in a second one, the way Chainlink's OCR aggregator packs its transmissions, so
        `latestRoundData` costs two storage reads. Timestamps therefore must fit 48 bits
        (year 8.9 million); round ids are uint80 as in the interface.
"""

from contracts.interfaces import IAggregatorV3

implements: IAggregatorV3

# Chainlink's AggregatorInterface event, emitted on every new round.
event AnswerUpdated:
    current: indexed(int256)
    roundId: indexed(uint256)
    updatedAt: uint256

VERSION: constant(uint256) = 4
MASK_80: constant(uint256) = 2**80 - 1
MASK_48: constant(uint256) = 2**48 - 1

decimals: public(uint8)
description: public(String[256])

# Latest round: the answer, and roundId | answeredInRound << 80 | startedAt << 160 | updatedAt << 208.
_answer: int256
_meta: uint256
# History, keyed by round id, for getRoundData.
_round_answer: HashMap[uint80, int256]
_round_meta: HashMap[uint80, uint256]


@deploy
def __init__(decimals_: uint8, description_: String[256], initial_answer: int256):
    """
    @notice Deploy a feed with `decimals_` decimals whose round 1 answers `initial_answer` now.
    @param decimals_ Decimals of every answer (Chainlink USD feeds use 8).
    @param description_ Human-readable pair, e.g. "ETH / USD".
    @param initial_answer The answer of round 1.
    """
    self.decimals = decimals_
    self.description = description_
    self._set(1, initial_answer, block.timestamp, block.timestamp, 1)


@external
@view
def version() -> uint256:
    """
    @notice Interface version, 4 like Chainlink's current aggregators.
    @return 4.
    """
    return VERSION


@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice The latest round, exactly as last set.
    @return (roundId, answer, startedAt, updatedAt, answeredInRound).
    """
    return self._unpack(self._answer, self._meta)


@external
@view
def getRoundData(_roundId: uint80) -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice A past round by id. Reverts "mock: no data present" for a round never set.
    @param _roundId The round id.
    @return (roundId, answer, startedAt, updatedAt, answeredInRound).
    """
    meta: uint256 = self._round_meta[_roundId]
    assert meta != 0, "mock: no data present"
    return self._unpack(self._round_answer[_roundId], meta)


@external
def set_answer(answer: int256):
    """
    @notice Publish `answer` as a new, complete round at the current block time.
    @dev Any answer is accepted, including zero and negative ones (to test consumers).
    @param answer The new answer, with `decimals` decimals.
    """
    round_id: uint80 = convert(self._meta & MASK_80, uint80) + 1
    self._set(round_id, answer, block.timestamp, block.timestamp, round_id)


@external
def set_round_data(
    round_id: uint80, answer: int256, started_at: uint256, updated_at: uint256, answered_in_round: uint80
):
    """
    @notice Overwrite the latest round with arbitrary fields (tests of stale, incomplete,
            future-dated or non-positive rounds). The round is also stored for getRoundData.
    @dev Reverts "mock: timestamp too large" when a timestamp does not fit 48 bits.
    @param round_id roundId.
    @param answer answer.
    @param started_at startedAt.
    @param updated_at updatedAt.
    @param answered_in_round answeredInRound.
    """
    self._set(round_id, answer, started_at, updated_at, answered_in_round)


@internal
def _set(round_id: uint80, answer: int256, started_at: uint256, updated_at: uint256, answered_in_round: uint80):
    assert started_at <= MASK_48 and updated_at <= MASK_48, "mock: timestamp too large"
    meta: uint256 = (
        convert(round_id, uint256)
        | (convert(answered_in_round, uint256) << 80)
        | (started_at << 160)
        | (updated_at << 208)
    )
    self._answer = answer
    self._meta = meta
    self._round_answer[round_id] = answer
    # A stored meta is never 0 for a real round (round 0 with zero timestamps is "no data").
    self._round_meta[round_id] = meta
    log AnswerUpdated(current=answer, roundId=convert(round_id, uint256), updatedAt=updated_at)


@internal
@pure
def _unpack(answer: int256, meta: uint256) -> (uint80, int256, uint256, uint256, uint80):
    return (
        convert(meta & MASK_80, uint80),
        answer,
        (meta >> 160) & MASK_48,
        meta >> 208,
        convert((meta >> 80) & MASK_80, uint80),
    )
