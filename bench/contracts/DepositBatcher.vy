# pragma version ~=0.4.3
"""
@title DepositBatcher
@notice Bench-only: many MarginEngine.deposit_for calls in one transaction, so that a local
        node holds a long engine history (one real Deposit event per call) in a few hundred
        transactions (bench/keeper.py --node). Never deployed outside a local bench chain.
"""

interface IEngine:
    def deposit_for(account: address, token: address, amount: uint256): nonpayable

interface IERC20:
    def approve(spender: address, amount: uint256) -> bool: nonpayable

# One transaction's calls; a deposit costs well under 100,000 gas, so a full batch fits a
# 30M-gas block only when callers size `count` to their block gas limit.
MAX_BATCH: constant(uint256) = 2000


@external
def approve(token: address, engine: address):
    """
    @notice Let `engine` pull this contract's `token` (the tokens deposited are minted here).
    @param token The token to approve.
    @param engine The MarginEngine.
    """
    assert extcall IERC20(token).approve(engine, max_value(uint256)), "batcher: approve failed"


@external
def deposit_many(engine: address, token: address, first: uint160, count: uint256, amount: uint256):
    """
    @notice `engine.deposit_for(address(first + i), token, amount)` for i in [0, count).
    @dev Reverts "batcher: batch too large" above MAX_BATCH; the engine's reverts propagate.
    @param engine The MarginEngine.
    @param token The cash or the underlying token (held by this contract).
    @param first The first account, as an integer address.
    @param count How many consecutive accounts.
    @param amount Token units per deposit.
    """
    assert count <= MAX_BATCH, "batcher: batch too large"
    for i: uint256 in range(count, bound=MAX_BATCH):
        extcall IEngine(engine).deposit_for(convert(first + convert(i, uint160), address), token, amount)
