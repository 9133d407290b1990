# pragma version ~=0.4.3
"""
@title LyingPool: a fake pool for router tests
@notice Claims to trade (token0, token1), takes the input in `swap` and reports a huge output
        without paying anything. The router must not believe it.
"""

from ethereum.ercs import IERC20

token0: public(immutable(address))
token1: public(immutable(address))


@deploy
def __init__(token0_: address, token1_: address):
    """
    @notice Deploy the fake pool.
    @param token0_ Claimed token0.
    @param token1_ Claimed token1.
    """
    token0 = token0_
    token1 = token1_


@external
def swap(token_in: address, amount_in: uint256, min_out: uint256, recipient: address) -> uint256:
    """
    @notice Take the input, pay nothing, claim 10**30 out.
    @param token_in Token sold.
    @param amount_in Input.
    @param min_out Ignored.
    @param recipient Ignored.
    @return 10**30.
    """
    extcall IERC20(token_in).transferFrom(msg.sender, self, amount_in)
    return 10**30


@external
@view
def get_amount_out(token_in: address, amount_in: uint256) -> uint256:
    """
    @notice Claims 10**30 for anything.
    @param token_in Ignored.
    @param amount_in Ignored.
    @return 10**30.
    """
    return 10**30
