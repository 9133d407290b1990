# pragma version ~=0.4.3
"""
@title FuzzLens: the engine's whole accounting state in one static call (tests only)
@license MIT
@notice The stateful fuzz suite compares every account before and after each step; one call
        that reads them all costs a fraction of one view per field. `state` returns a flat
        list of words:

            [usd.balanceOf(engine), weth.balanceOf(engine), supply index,
             total supply shares, total borrow shares, total_underlying,
             liquidator.bad_debt(), liquidator.insurance_fund() (int256 as two's complement),
             borrow index, utilization, reserve (the indices, utilization and reserve accrued
             to now: MarginEngine.cash_pool),
             then per account: cash_shares, cash_debt (supply and borrow shares),
             underlying_balance, n, n packed positions, the two words of its perp position
             (PerpBook.position_words)]
"""

interface Engine:
    def cash_shares(account: address) -> uint256: view
    def cash_debt(account: address) -> uint256: view
    def underlying_balance(account: address) -> uint256: view
    def packed_positions(account: address) -> DynArray[uint256, 32]: view
    def cash_pool() -> (uint256, uint256, uint256, uint256, uint256, uint256, uint256): view
    def cash_totals() -> (uint256, uint256, uint256, uint256): view
    def total_underlying() -> uint256: view
    def perp_book() -> PerpBook: view

interface PerpBook:
    def position_words(account: address, i: uint256) -> uint256: view
interface Token:
    def balanceOf(account: address) -> uint256: view

interface Liquidator:
    def bad_debt() -> uint256: view
    def insurance_fund() -> int256: view

MAX_ACCOUNTS: constant(uint256) = 16
MAX_WORDS: constant(uint256) = 11 + MAX_ACCOUNTS * 38


@external
@view
def state(
    engine: Engine,
    usd: Token,
    weth: Token,
    liquidator: Liquidator,
    accounts: DynArray[address, MAX_ACCOUNTS],
) -> DynArray[uint256, MAX_WORDS]:
    """
    @notice The engine's token balances, totals and every listed account's balances and positions.
    @param engine The MarginEngine.
    @param usd The cash token.
    @param weth The underlying token.
    @param liquidator The Liquidator.
    @param accounts The accounts to read.
    @return The flat word list described in the contract notice.
    """
    si: uint256 = 0
    bi: uint256 = 0
    supply: uint256 = 0
    borrows: uint256 = 0
    u: uint256 = 0
    r: uint256 = 0
    reserve: uint256 = 0
    si, bi, supply, borrows, u, r, reserve = staticcall engine.cash_pool()
    shares: uint256 = 0
    debt: uint256 = 0
    params: uint256 = 0
    cap: uint256 = 0
    shares, debt, params, cap = staticcall engine.cash_totals()
    out: DynArray[uint256, MAX_WORDS] = [
        staticcall usd.balanceOf(engine.address),
        staticcall weth.balanceOf(engine.address),
        si,
        shares,
        debt,
        staticcall engine.total_underlying(),
        staticcall liquidator.bad_debt(),
        convert(convert(staticcall liquidator.insurance_fund(), bytes32), uint256),
        bi,
        u,
        reserve,
    ]
    book: PerpBook = staticcall engine.perp_book()
    for account: address in accounts:
        out.append(staticcall engine.cash_shares(account))
        out.append(staticcall engine.cash_debt(account))
        out.append(staticcall engine.underlying_balance(account))
        positions: DynArray[uint256, 32] = staticcall engine.packed_positions(account)
        out.append(len(positions))
        for packed: uint256 in positions:
            out.append(packed)
        out.append(staticcall book.position_words(account, 0))
        out.append(staticcall book.position_words(account, 1))
    return out
