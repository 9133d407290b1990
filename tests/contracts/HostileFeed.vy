# pragma version ~=0.4.3
"""
@title HostileFeed: an AggregatorV3 look-alike that breaks in the ways a real feed can
@license MIT
@notice TESTS ONLY. `mode` selects what latestRoundData and getRoundData do:
            0 MODE_ROUND       answer the stored round (like a mock feed);
            1 MODE_REVERT      revert with a reason;
            2 MODE_BURN        loop until the call runs out of gas;
            3 MODE_SHORT       return 64 bytes instead of five words;
            4 MODE_WIDE_ID     return the stored round with a round id above uint80.
        `decimals` can be changed after the feed was added to an aggregator.
"""

MODE_ROUND: constant(uint256) = 0
MODE_REVERT: constant(uint256) = 1
MODE_BURN: constant(uint256) = 2
MODE_SHORT: constant(uint256) = 3
MODE_WIDE_ID: constant(uint256) = 4

decimals: public(uint8)
mode: public(uint256)
answer: public(int256)
updated_at: public(uint256)


@deploy
def __init__(decimals_: uint8, answer_: int256):
    """
    @notice A feed answering `answer_` now, in MODE_ROUND.
    @param decimals_ Decimals reported by decimals().
    @param answer_ The answer of its only round.
    """
    self.decimals = decimals_
    self.answer = answer_
    self.updated_at = block.timestamp


@external
def set_mode(mode_: uint256):
    """
    @notice Choose the behaviour (see the contract notice).
    @param mode_ One of the MODE_ constants.
    """
    self.mode = mode_


@external
def set_decimals(decimals_: uint8):
    """
    @notice Change the decimals the feed reports.
    @param decimals_ New decimals.
    """
    self.decimals = decimals_


@external
@view
@raw_return
def latestRoundData() -> Bytes[160]:
    """
    @notice The round (or the breakage) selected by `mode`.
    @dev Returns raw bytes (@raw_return) so that it can answer data no well-typed feed could.
    @return ABI-encoded (roundId, answer, startedAt, updatedAt, answeredInRound) or less.
    """
    return self._round()


@external
@view
@raw_return
def getRoundData(_roundId: uint80) -> Bytes[160]:
    """
    @notice As latestRoundData, for any round id.
    @param _roundId Ignored.
    @return As latestRoundData.
    """
    return self._round()


@internal
@view
def _round() -> Bytes[160]:
    if self.mode == MODE_REVERT:
        raise "hostile: revert"
    if self.mode == MODE_BURN:
        x: uint256 = 0
        for i: uint256 in range(10**9):
            x = convert(keccak256(convert(x, bytes32)), uint256)
        return b""
    round_id: uint256 = 1
    if self.mode == MODE_WIDE_ID:
        round_id = 2**80
    encoded: Bytes[160] = concat(
        convert(round_id, bytes32),
        convert(self.answer, bytes32),
        convert(self.updated_at, bytes32),
        convert(self.updated_at, bytes32),
        convert(round_id, bytes32),
    )
    if self.mode == MODE_SHORT:
        return slice(encoded, 0, 64)
    return encoded
