# pragma version ~=0.4.3
# pragma optimize gas
"""
@title Router: one exact-in order split across up to eight constant-product pools, atomically
@license MIT
@notice `swap_split` pulls the whole input from the caller once, sells `amounts_in[i]` in
        `pools[i]` for every leg, sends every output straight to `recipient`, and reverts as a
        whole unless the recipient's token_out balance grew by at least `min_total_out` before
        `deadline`. The split itself comes from off-chain (keeper/routing.py: equalised
        marginal prices); `quote_split` prices a split exactly as `swap_split` would execute it.

        The output is measured as the recipient's token_out balance difference, not the sum the
        pools report, so a pool that lies about its output cannot fake the min-out check. Each
        pool must trade exactly the pair (token_in, token_out) and appear at most once (so the
        quote of a split equals its execution). Zero-amount legs are skipped.

        Approvals: the router gives each pool it uses an allowance of max_value(uint256) for
        token_in, once (resetting to zero first when a non-zero allowance ran short, for tokens
        that require it). This is safe because the router holds no tokens between transactions:
        everything it pulls is spent in the same call. Tokens sent to the router directly are
        not recoverable and may be taken by anyone; do not send tokens to it.
"""

from ethereum.ercs import IERC20
from contracts.interfaces import IConstantProductPool
from contracts.interfaces import IRouter

implements: IRouter

MAX_POOLS: public(constant(uint256)) = 8


@internal
@view
def _check_pair(pool: address, token_in: address, token_out: address):
    """
    @dev Revert "router: pool pair mismatch" unless `pool` trades exactly (token_in, token_out).
    """
    t0: address = staticcall IConstantProductPool(pool).token0()
    t1: address = staticcall IConstantProductPool(pool).token1()
    assert (t0 == token_in and t1 == token_out) or (t0 == token_out and t1 == token_in), \
        "router: pool pair mismatch"


@internal
@pure
def _check_unique(pools: DynArray[address, MAX_POOLS], i: uint256):
    """
    @dev Revert "router: duplicate pool" if pools[i] appears again after index i (all pairs
         are covered as i runs over the list: at most 28 comparisons).
    """
    for j: uint256 in range(i + 1, MAX_POOLS, bound=MAX_POOLS):
        if j >= len(pools):
            break
        assert pools[j] != pools[i], "router: duplicate pool"


@external
@nonreentrant
def swap_split(token_in: address, token_out: address, pools: DynArray[address, MAX_POOLS],
               amounts_in: DynArray[uint256, MAX_POOLS], min_total_out: uint256,
               recipient: address, deadline: uint256) -> uint256:
    """
    @notice Sell sum(amounts_in) of token_in across `pools` (leg i sells amounts_in[i] in
            pools[i]); all legs or none.
    @dev The caller approves the router for sum(amounts_in) of token_in. Reverts:
         "router: expired" (block.timestamp > deadline), "router: length mismatch",
         "router: no pools", "router: identical tokens", "router: zero recipient",
         "router: pool pair mismatch", "router: duplicate pool", "router: zero input",
         "router: transfer in failed", "router: approve failed",
         "router: insufficient output" (the recipient received less than min_total_out),
         and any leg's own revert (e.g. "pool: zero output"), which undoes every leg.
    @param token_in Token sold.
    @param token_out Token bought.
    @param pools Pools, each trading exactly (token_in, token_out), no duplicates, at most 8.
    @param amounts_in Input per pool, same length as `pools`; zero legs are skipped.
    @param min_total_out Least total output the recipient must receive.
    @param recipient Receiver of every leg's output.
    @param deadline Last valid block.timestamp.
    @return The total output received by `recipient`.
    """
    assert block.timestamp <= deadline, "router: expired"
    n: uint256 = len(pools)
    assert n == len(amounts_in), "router: length mismatch"
    assert n != 0, "router: no pools"
    assert token_in != token_out, "router: identical tokens"
    assert recipient != empty(address), "router: zero recipient"

    total_in: uint256 = 0
    for i: uint256 in range(n, bound=MAX_POOLS):
        self._check_pair(pools[i], token_in, token_out)
        self._check_unique(pools, i)
        total_in += amounts_in[i]
    assert total_in != 0, "router: zero input"

    before: uint256 = staticcall IERC20(token_out).balanceOf(recipient)
    assert extcall IERC20(token_in).transferFrom(msg.sender, self, total_in,
                                                 default_return_value=True), \
        "router: transfer in failed"
    legs: uint256 = 0
    for i: uint256 in range(n, bound=MAX_POOLS):
        amount: uint256 = amounts_in[i]
        if amount == 0:
            continue
        pool: address = pools[i]
        allowed: uint256 = staticcall IERC20(token_in).allowance(self, pool)
        if allowed < amount:
            if allowed != 0:
                assert extcall IERC20(token_in).approve(pool, 0, default_return_value=True), \
                    "router: approve failed"
            assert extcall IERC20(token_in).approve(pool, max_value(uint256),
                                                    default_return_value=True), \
                "router: approve failed"
        extcall IConstantProductPool(pool).swap(token_in, amount, 0, recipient)
        legs += 1

    total_out: uint256 = staticcall IERC20(token_out).balanceOf(recipient) - before
    assert total_out >= min_total_out, "router: insufficient output"
    log IRouter.SplitSwap(sender=msg.sender, recipient=recipient, token_in=token_in,
                          token_out=token_out, amount_in=total_in, amount_out=total_out,
                          legs=legs)
    return total_out


@external
@view
def quote_split(token_in: address, pools: DynArray[address, MAX_POOLS],
                amounts_in: DynArray[uint256, MAX_POOLS]) -> uint256:
    """
    @notice The total output `swap_split` would deliver now for this split (exact: the pools'
            own `get_amount_out`, legs independent because pools are distinct).
    @dev token_out is the other token of pools[0]; every pool must trade the same pair.
         Reverts: "router: length mismatch", "router: no pools", "router: pool pair mismatch"
         (also when token_in is not in pools[0]), "router: duplicate pool".
    @param token_in Token sold.
    @param pools Pools, no duplicates, at most 8.
    @param amounts_in Input per pool, same length as `pools`.
    @return Sum of the legs' outputs, in token_out units.
    """
    n: uint256 = len(pools)
    assert n == len(amounts_in), "router: length mismatch"
    assert n != 0, "router: no pools"
    t0: address = staticcall IConstantProductPool(pools[0]).token0()
    token_out: address = t0
    if t0 == token_in:
        token_out = staticcall IConstantProductPool(pools[0]).token1()
    total_out: uint256 = 0
    for i: uint256 in range(n, bound=MAX_POOLS):
        pool: address = pools[i]
        self._check_pair(pool, token_in, token_out)
        self._check_unique(pools, i)
        total_out += staticcall IConstantProductPool(pool).get_amount_out(token_in, amounts_in[i])
    return total_out
