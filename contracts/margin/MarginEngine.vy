# pragma version ~=0.4.3
# pragma optimize codesize
# pragma experimental-codegen
"""
@title MarginEngine: accounts, collateral, option series, signed-order fills, portfolio margin
@license MIT
@notice Kappa's margin engine (DESIGN.md "Margin engine"; the model in docs/margin_model.md).

        Accounts are addresses. Collateral is a cash asset (a USD stablecoin worth 1, which
        settles all premiums and PnL) and the underlying token (priced by the oracle). Cash
        bears interest (contracts/margin/interest.vy): a positive balance is supply shares, a
        negative one (allowed while the account stays above its margin requirement) borrow
        shares; the supply and borrow indices accrue at a kinked rate on utilization on the
        first cash touch of each block, borrowers pay suppliers less a reserve factor that
        goes to the insurance fund, and a borrowing withdrawal or swap must leave utilization
        within the cap. A loss socialized by the Liquidator lowers the supply index, so it
        falls on positive balances only and never reduces a debt.

        Options are European, cash-settled series (expiry, strike, call/put) listed by the risk
        admin. Trades are off-chain orders settled on chain: a maker signs an EIP-712 Order
        (contracts/margin/orders.vy) and a taker, or its operator, fills part or all of it.

        The margin rule: after a risk-increasing action (fill, withdraw, swap) an account needs
        H_IM >= 0 (H_IM covers MM's scenarios, so H_IM <= H_MM). An account below initial
        margin may still reduce its risk: the action must leave its H_IM no lower and its H_MM
        not below min(before, 0), and its fills are held to the fair-price band, so value
        leaves it only through liquidation. Operators' fills are held to the band too, and
        their hedge swaps to a daily loss budget the account sets. An account with H_MM < 0
        is liquidatable (by the Liquidator).

        Rounding favours the protocol: token amounts credited round down and debited round up
        (cash shares: minted down, burned up); a premium is rounded up for its payer and its
        receiver gets the same amount (internal transfers are zero-sum).

        Roles: owner (two-step transfer) sets roles and addresses; the risk admin lists series
        and sets parameters within hard bounds; the guardian pauses new risk (fills), never
        deposits, healthy withdrawals or liquidations.

        Events carry what an off-chain mirror needs to rebuild every account from logs alone:
        Deposit / Withdraw (wad amounts), Fill (sizes, premium), PositionSettled, Accrued (the
        indices), LossSocialized (the supply index after the cut), ReserveCollected.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

from contracts.auth import ownable
from contracts.math import smile
from contracts.math import wad
from contracts.margin import positions
from contracts.margin import risk
from contracts.margin import params
from contracts.margin import orders
from contracts.margin import interest
import contracts.margin.RiskCalculator as RiskCalculator
import contracts.margin.OrderBook as OrderBook
import contracts.margin.PerpBook as PerpBook
from contracts.interfaces import IOracleAggregator
from contracts.interfaces import IRouter
from contracts.interfaces import ISequencerGuard
from contracts.interfaces import IVolOracle

initializes: ownable

exports: (
    ownable.owner,
    ownable.pending_owner,
    ownable.transfer_ownership,
    ownable.accept_ownership,
)

WAD: constant(uint256) = wad.UWAD
IWAD: constant(int256) = wad.WAD
MAX_POSITIONS: constant(uint256) = 32
MAX_EXPIRIES: constant(uint256) = 16
# Hard bounds on the risk admin's parameters.
MAX_SIZE: constant(uint256) = 2**96
IMAX_SIZE: constant(int256) = 2**96
MAX_SPOT: constant(uint256) = 10**35
MIN_TENOR: constant(uint256) = 3600
MAX_TENOR: constant(uint256) = 2 * 365 * 86400
EXPIRY_TIME_OF_DAY: constant(uint256) = 8 * 3600
MAX_STRIKE_RATIO: constant(uint256) = 10
# Series ids and position words: contracts/margin/positions.vy.
SIZE_BITS: constant(uint256) = positions.SIZE_BITS
SHARES_MASK: constant(uint256) = 2**96 - 1
PERP_HOLDER: constant(uint256) = 2**127
# A hedge swap must return at least (1 - 5%) of its input's oracle value: an operator cannot
# give an account's collateral away through a bad trade.
MAX_SWAP_LOSS: constant(uint256) = WAD // 20


struct Series:
    expiry: uint256
    strike: uint256
    is_call: bool
    listed: bool


event Deposit:
    account: indexed(address)
    payer: indexed(address)
    token: indexed(address)
    amount: uint256
    amount_wad: uint256

event Withdraw:
    account: indexed(address)
    token: indexed(address)
    receiver: address
    amount: uint256
    amount_wad: uint256

event OperatorSet:
    account: indexed(address)
    operator: indexed(address)
    allowed: bool

event SeriesListed:
    series_id: indexed(uint256)
    expiry: uint256
    strike: uint256
    is_call: bool

event ExpirySettled:
    expiry: indexed(uint256)
    price: uint256

event PositionSettled:
    account: indexed(address)
    series_id: indexed(uint256)
    size: int256
    payoff: int256

event Fill:
    order_hash: indexed(bytes32)
    maker: indexed(address)
    taker: indexed(address)
    series_id: uint256
    maker_is_buy: bool
    amount: uint256
    price: uint256
    premium: uint256

event Swap:
    account: indexed(address)
    token_in: indexed(address)
    amount_in: uint256
    amount_out: uint256
    # The swap's loss at the oracle price (USD wad, 0 for a gain).
    loss: uint256

event HedgeBudget:
    account: indexed(address)
    budget: uint256

event Accrued:
    supply_index: uint256
    borrow_index: uint256

event ReserveCollected:
    fund: indexed(address)
    amount: uint256

event InterestParams:
    base: uint256
    slope1: uint256
    slope2: uint256
    kink: uint256
    reserve_factor: uint256
    utilization_cap: uint256

event PortfolioMoved:
    account: indexed(address)
    receiver: indexed(address)
    fraction: uint256

event CashMoved:
    sender: indexed(address)
    receiver: indexed(address)
    amount: uint256

event LossSocialized:
    receiver: indexed(address)
    amount: uint256
    deficit: uint256
    supply_index: uint256

event RiskParams:
    im: risk.Mode
    mm: risk.Mode
    grid: risk.Grid
    ref_vol: uint256
    max_positions: uint256

event Caps:
    cash_cap: uint256
    underlying_cap: uint256

event Paused:
    paused: bool

event RoleSet:
    role: String[16]
    account: indexed(address)

event VenueSet:
    pool: indexed(address)
    listed: bool



# Roles and wiring (the owner is in the ownable module).
risk_admin: public(address)
guardian: public(address)
liquidator: public(address)
router: public(IRouter)
# The signed orders' book and the perp's book: contracts of their own, each set once (set_role).
order_book: public(OrderBook.__interface__)
perp_book: public(PerpBook.__interface__)
is_venue: public(HashMap[address, bool])
paused: public(bool)

calculator: public(immutable(RiskCalculator.__interface__))
oracle: public(immutable(IOracleAggregator))
vol_oracle: public(immutable(IVolOracle))
cash_token: public(IERC20)
underlying_token: public(IERC20)
cash_scale: public(uint256)
underlying_scale: public(uint256)

# Risk parameters.
# The margin parameters in six words, checked and packed by RiskCalculator.pack_params in the
# layout of contracts/margin/params.vy.
_params: uint256[6]
cash_cap: public(uint256)
underlying_cap: public(uint256)

# Cash pool (contracts/margin/interest.vy has the words' layouts): positive balances are supply
# shares, negative balances borrow shares. An accrual reads `_indices` and `_totals` and writes
# `_indices` only; `_reserve_offset` (wad^2 units) makes the reserve B I_b - S I_s - offset.
_indices: uint256
_totals: uint256
_reserve_offset: int256
_utilization_cap: uint256
# Per account, one slot: borrow shares << 128 | PERP_HOLDER | supply shares (each below
# 2**96, the totals' bound; an account holds one or the other). PERP_HOLDER marks an account
# that ever held the perp: only its margin reads call PerpBook, and the margin read loads this
# slot anyway. Share arithmetic never reaches the flag: the lower lane's shares stay below
# 2**96 and never go negative.
_cash_word: HashMap[address, uint256]
underlying_balance: public(HashMap[address, uint256])
total_underlying: public(uint256)
# Losses socialized beyond every other positive balance: credited cash that no balance backs.
deficit: public(uint256)

# Series and positions (encodings in contracts/margin/positions.vy). A series id is its terms
# packed; `_listed` marks the listed ones. A position packs (series_id << 108) | (size as a
# 108-bit two's complement): the margin check reads one slot per position and no series slot.
_listed: HashMap[uint256, bool]
live_expiries: public(DynArray[uint256, MAX_EXPIRIES])
settlement_price: public(HashMap[uint256, uint256])
_positions: HashMap[address, DynArray[uint256, MAX_POSITIONS]]
is_operator: public(HashMap[address, HashMap[address, bool]])
# What an account's operators may lose to hedge swaps per UTC day (USD wad, at the oracle
# price), set by the account; and the day and the loss so far: day << 192 | loss.
hedge_budget: public(HashMap[address, uint256])
_hedge_loss: HashMap[address, uint256]


@deploy
def __init__(
    calculator_: RiskCalculator.__interface__,
    oracle_: IOracleAggregator,
    vol_oracle_: IVolOracle,
    cash_token_: IERC20,
    underlying_token_: IERC20,
    im_: risk.Mode,
    mm_: risk.Mode,
    grid_: risk.Grid,
    ref_vol_: uint256,
):
    """
    @notice Deploy the engine. The deployer is owner, risk admin and guardian until changed.
    @dev The oracle aggregator is also the sequencer guard (it implements ISequencerGuard).
         Token decimals must be at most 18. Reverts on parameters outside the hard bounds.
    @param calculator_ The RiskCalculator (the margin model's pricing code).
    @param oracle_ The OracleAggregator (spot price and sequencer guard).
    @param vol_oracle_ The VolOracle.
    @param cash_token_ The cash asset (USD stablecoin).
    @param underlying_token_ The underlying token.
    @param im_ Initial-margin parameters.
    @param mm_ Maintenance-margin parameters.
    @param grid_ Scenario grid parameters.
    @param ref_vol_ Reference vol when no expiry is live, a wad.
    """
    ownable.__init__()
    self.risk_admin = msg.sender
    self.guardian = msg.sender
    calculator = calculator_
    oracle = oracle_
    vol_oracle = vol_oracle_
    self.cash_token = cash_token_
    self.underlying_token = underlying_token_
    self.cash_scale = self._scale(cash_token_)
    self.underlying_scale = self._scale(underlying_token_)
    # Interest off (rate 0, no cap) until the risk admin sets it (deployments do).
    self._indices = interest.INITIAL_INDICES | block.timestamp
    self._utilization_cap = WAD
    self.cash_cap = max_value(uint256)
    self.underlying_cap = max_value(uint256)
    self._set_risk_params(im_, mm_, grid_, ref_vol_, 16)


# ---------------------------------------------------------------------------------------------
# Collateral
# ---------------------------------------------------------------------------------------------


@external
@nonreentrant
def deposit(token: address, amount: uint256):
    """
    @notice Deposit cash or underlying tokens into the caller's account.
    @dev Always allowed (also while paused). Reverts "engine: unknown token", "engine: zero
         amount", "engine: cap exceeded", or if the transfer fails.
    @param token The cash token or the underlying token.
    @param amount Token units (the token's decimals).
    """
    self._deposit(msg.sender, token, amount)


@external
@nonreentrant
def deposit_for(account: address, token: address, amount: uint256):
    """
    @notice Deposit the caller's tokens into another account (keepers top up, protocols fund).
    @dev As `deposit`; the tokens come from msg.sender. Reverts "engine: zero account".
    @param account The account credited.
    @param token The cash token or the underlying token.
    @param amount Token units.
    """
    assert account != empty(address), "engine: zero account"
    self._deposit(account, token, amount)


@external
@nonreentrant
def withdraw(token: address, amount: uint256, receiver: address):
    """
    @notice Withdraw tokens from the caller's own account (never an operator).
    @dev The account must meet initial margin afterwards ("engine: below initial margin"),
         hold no live position whose expiry's vol entry is stale ("engine: stale vol"), and,
         if it holds positions, the sequencer guard must allow risk increases
         ("engine: sequencer grace"). Allowed while paused. Reverts "engine: unknown token",
         "engine: zero amount", "engine: zero receiver", "engine: insufficient underlying".
         Cash may go negative (a debt) if the margin rule holds and utilization stays within
         the cap ("engine: utilization cap").
    @param token The cash token or the underlying token.
    @param amount Token units.
    @param receiver Where the tokens go.
    """
    assert amount > 0, "engine: zero amount"
    assert receiver != empty(address), "engine: zero receiver"
    account: address = msg.sender
    self._settle_expired(account)
    amount_wad: uint256 = 0
    if token == self.cash_token.address:
        amount_wad = amount * self.cash_scale
        self._debit_cash(account, amount_wad)
    elif token == self.underlying_token.address:
        amount_wad = amount * self.underlying_scale
        self._add_underlying(account, -convert(amount_wad, int256))
    else:
        raise "engine: unknown token"
    if self._holds_risk(account):
        self._require_sequencer_up()
    self._require_initial_margin(account)
    log Withdraw(account=account, token=token, receiver=receiver, amount=amount, amount_wad=amount_wad)
    assert extcall IERC20(token).transfer(receiver, amount, default_return_value=True), "engine: transfer failed"


@external
def set_operator(operator: address, allowed: bool):
    """
    @notice Let `operator` fill and hedge for the caller's account, or revoke it.
    @dev An operator can never withdraw or change operators. Reverts "engine: zero operator".
    @param operator The keeper or contract.
    @param allowed True to allow, False to revoke.
    """
    assert operator != empty(address), "engine: zero operator"
    self.is_operator[msg.sender][operator] = allowed
    log OperatorSet(account=msg.sender, operator=operator, allowed=allowed)


@external
def set_hedge_budget(budget: uint256):
    """
    @notice Set how much the caller's operators may lose to hedge swaps per UTC day, in USD
            (wad) at the oracle price. 0 (the default) lets them swap only at no loss.
    @param budget USD wad per day.
    """
    self.hedge_budget[msg.sender] = budget
    log HedgeBudget(account=msg.sender, budget=budget)


@external
@view
def hedge_loss_today(account: address) -> uint256:
    """
    @notice What the account's operators lost to hedge swaps so far this UTC day (USD wad).
    @param account The account.
    @return The loss.
    """
    packed: uint256 = self._hedge_loss[account]
    if packed >> 192 != block.timestamp // 86400:
        return 0
    return packed & (2**192 - 1)


# ---------------------------------------------------------------------------------------------
# Series and settlement
# ---------------------------------------------------------------------------------------------


@external
def list_series(expiry: uint256, strike: uint256, is_call: bool) -> uint256:
    """
    @notice List an option series (risk admin).
    @dev Bounds: expiry on the hourly grid, between 1 hour and 2 years ahead; the vol oracle
         must have an entry for the expiry ("engine: no vol entry"); strike within a factor
         10 of the current spot ("engine: strike out of bounds"); at most 16 live expiries
         ("engine: too many expiries"). Reverts "engine: not risk admin", "engine: bad expiry".
    @param expiry Unix seconds.
    @param strike A wad.
    @param is_call True for a call.
    @return The series id: its terms packed, (expiry / 3600) << 121 | is_call << 120 | strike.
    """
    self._only_risk_admin()
    assert expiry % positions.EXPIRY_GRID == 0, "engine: bad expiry"
    assert expiry >= block.timestamp + MIN_TENOR and expiry <= block.timestamp + MAX_TENOR, "engine: bad expiry"
    assert staticcall vol_oracle.has_entry(expiry), "engine: no vol entry"
    spot: uint256 = self._spot()[0]
    assert strike * MAX_STRIKE_RATIO >= spot and strike <= spot * MAX_STRIKE_RATIO, "engine: strike out of bounds"
    # spot <= 1e35 and the ratio bound keep strike <= 1e36 < 2**120, so the id's fields do not
    # overlap; expiry / 3600 < 2**27 by the tenor bound, so the id is below 2**148.
    series_id: uint256 = positions.series_id(expiry, strike, is_call)
    assert not self._listed[series_id], "engine: series listed"
    # live_expiries is kept ascending (keepers read it in expiry order). Insertion: later
    # expiries move up one place. An expiry already live is met
    # before anything moved (the list ascends), and then nothing is inserted.
    moved: uint256 = expiry
    for i: uint256 in range(len(self.live_expiries), bound=MAX_EXPIRIES):
        e: uint256 = self.live_expiries[i]
        if e == expiry:
            moved = 0
            break
        if e > moved:
            self.live_expiries[i] = moved
            moved = e
    if moved != 0:
        assert len(self.live_expiries) < MAX_EXPIRIES, "engine: too many expiries"
        self.live_expiries.append(moved)
    self._listed[series_id] = True
    log SeriesListed(series_id=series_id, expiry=expiry, strike=strike, is_call=is_call)
    return series_id


@external
def settle_expiry(expiry: uint256, hints: DynArray[uint80, 8]):
    """
    @notice Record the settlement price of an expiry, once, after it passes (anyone).
    @dev Source: OracleAggregator.settlement_price(expiry, hints), the median of each
         source's first round updated at or after the expiry (hints: those rounds' ids, one
         per source, from keeper/settlement.py), so the price is fixed by data dated at the
         expiry and not by the moment of the call; it reverts while a source is pending
         (see the aggregator). Reverts "oracle: not expired" before the expiry, "engine:
         unknown expiry" (never listed, or already settled: settling removes it from the
         live list).
    @param expiry The expiry to settle.
    @param hints Per oracle source, the round id of its first round at or after the expiry.
    """
    # The expiry is no longer live: drop it from the list, keeping the ascending order (a
    # revert below undoes the move).
    found: bool = False
    for i: uint256 in range(len(self.live_expiries), bound=MAX_EXPIRIES):
        if found:
            self.live_expiries[i - 1] = self.live_expiries[i]
        found = found or self.live_expiries[i] == expiry
    assert found, "engine: unknown expiry"
    self.live_expiries.pop()
    # The aggregator reverts "oracle: not expired" before the expiry.
    price: uint256 = staticcall oracle.settlement_price(expiry, hints)
    self.settlement_price[expiry] = price
    log ExpirySettled(expiry=expiry, price=price)


@external
def settle_positions(account: address):
    """
    @notice Settle an account's positions in expired, settled series into cash (anyone).
    @dev Emits PositionSettled for each; a no-op when there are none.
    @param account The account.
    """
    self._settle_expired(account)


@external
def settle_perp(account: address):
    """
    @notice Settle an account's perp into its cash (anyone): funding accrues and the position
            settles at the index, q (S - P) - q (F - F0) rounded down (PerpBook.settle).
    @dev Never lowers the account's margin: the model already counts the unsettled value,
         with the funding rounded against the account. Without a position only interest
         accrues. Reverts "engine: spot out of range" and PerpBook's reasons.
    @param account The account.
    """
    # Interest first, so that the accrual is logged before PerpBook's event (a mirror applies
    # the settlement at the accrued indices).
    self._accrue()
    cash: int256 = extcall self.perp_book.settle(account, convert(self._spot()[0], int256))
    if cash != 0:
        self._add_cash(account, cash, True)


# ---------------------------------------------------------------------------------------------
# Trading
# ---------------------------------------------------------------------------------------------


@external
@nonreentrant
def fill(order: orders.Order, signature: Bytes[65], amount: uint256, taker: address):
    """
    @notice Fill `amount` of a maker's signed order against `taker`'s account.
    @dev Caller: the taker or one of its operators ("engine: not authorised"). Reverts
         "engine: paused", "engine: sequencer grace", "engine: unknown series", "engine: series
         expired", "engine: self trade", "engine: size too large", "engine: too many
         positions", the orders module's reasons (expired, cancelled, overfill, signature), and
         "engine: below initial margin" if either side fails the margin rule afterwards: H_IM
         >= 0, or else (and always while it holds an expiry whose vol entry is stale) H_IM no
         lower than before and H_MM not pushed below zero. A fill sent by an operator, or one
         that leaves a side below initial margin, must be priced within the series'
         fair-price band (RiskCalculator.price_band, "engine: price outside band").
         The maker buys (order.is_buy) or sells `amount` options at order.price per unit; the
         premium amount * price is rounded up and moves between the two cash balances.
    @param order The maker's order.
    @param signature The maker's 65-byte EIP-712 signature (r, s, v).
    @param amount Options to fill (wad units of underlying).
    @param taker The taker's account.
    """
    self._only_owner_or_operator(taker)
    self._require_new_risk_allowed()
    is_perp: bool = order.series_id == positions.PERP_ID
    s: Series = empty(Series)
    if not is_perp:
        s = self._load_series(order.series_id)
        assert s.listed, "engine: unknown series"
        assert block.timestamp < s.expiry, "engine: series expired"
    assert order.maker != taker, "engine: self trade"
    assert amount <= MAX_SIZE and order.price <= MAX_SPOT, "engine: size too large"
    digest: bytes32 = extcall self.order_book.fill(order, signature, amount)
    # Interest first: the margin checks below read cash accrued to now.
    self._accrue()
    # Expired, settled positions turn into cash first, so they never hold a position slot.
    self._settle_expired(order.maker)
    self._settle_expired(taker)

    market: risk.Market = self._market()
    maker_before: risk.Portfolio = empty(risk.Portfolio)
    taker_before: risk.Portfolio = empty(risk.Portfolio)
    premium: uint256 = 0
    if is_perp:
        # A perp fill changes only cash and the perp terms: those are read before it, the rest
        # of each portfolio once, after it.
        maker_before.cash = self._cash(order.maker)
        maker_before.perp = self._perp_terms(order.maker, market.spot)
        taker_before.cash = self._cash(taker)
        taker_before.perp = self._perp_terms(taker, market.spot)
        # PerpBook settles both positions at the index, checks the price against its band and
        # returns each side's cash (the settlements and the fill's payment).
        buyer: address = order.maker
        seller: address = taker
        if not order.is_buy:
            buyer = taker
            seller = order.maker
        buyer_cash: int256 = 0
        seller_cash: int256 = 0
        buyer_cash, seller_cash = extcall self.perp_book.trade(
            buyer, seller, convert(amount, int256), convert(order.price, int256), market.spot
        )
        self._add_cash(buyer, buyer_cash, True)
        self._add_cash(seller, seller_cash, True)
        self._cash_word[buyer] |= PERP_HOLDER
        self._cash_word[seller] |= PERP_HOLDER
    else:
        maker_before = self._portfolio(order.maker, market.spot)
        taker_before = self._portfolio(taker, market.spot)
        premium = (amount * order.price + WAD - 1) // WAD
        delta: int256 = convert(amount, int256)
        cash: int256 = convert(premium, int256)
        if not order.is_buy:
            delta = -delta
            cash = -cash
        # Maker: +delta options, -cash; taker the opposite.
        self._add_position(order.maker, order.series_id, delta)
        self._add_position(taker, order.series_id, -delta)
        self._add_cash(order.maker, -cash, False)
        self._add_cash(taker, cash, False)
    log Fill(
        order_hash=digest, maker=order.maker, taker=taker, series_id=order.series_id,
        maker_is_buy=order.is_buy, amount=amount, price=order.price, premium=premium,
    )
    maker_after: risk.Portfolio = self._portfolio(order.maker, market.spot)
    taker_after: risk.Portfolio = self._portfolio(taker, market.spot)
    if is_perp:
        maker_before = self._with_perp(maker_after, maker_before)
        taker_before = self._with_perp(taker_after, taker_before)
    maker_below: bool = self._require_margin_rule(maker_before, maker_after, market)
    taker_below: bool = self._require_margin_rule(taker_before, taker_after, market)
    # Value leaves an account below initial margin only through liquidation, and an operator
    # cannot hand its account's value away: such fills are held to the fair-price band (a
    # perp's fills always are, to PerpBook's band around the index).
    if not is_perp and (maker_below or taker_below or msg.sender != taker):
        self._require_fair_price(order.series_id, s.expiry, order.price, market)


@external
@nonreentrant
def swap(account: address, token_in: address, pools: DynArray[address, 8], amounts_in: DynArray[uint256, 8], min_total_out: uint256, deadline: uint256) -> uint256:
    """
    @notice Hedge: swap an account's cash for underlying or back through the Router, split
            across several pools.
    @dev Caller: the account or one of its operators ("engine: not authorised"). Only pools
         the owner listed as venues ("engine: unknown venue"), and the output must be worth at
         least 95% of the input at the oracle price ("engine: swap loss too large"), so an
         operator can hedge but cannot give collateral away; an operator's losses add up per
         UTC day against the account's `hedge_budget` ("engine: hedge budget exceeded"). Reverts "engine: paused",
         "engine: sequencer grace", "engine: unknown token", "engine: no router", "engine: insufficient underlying", "engine: cap exceeded", "engine: utilization cap" (cash into debt past the cap), the Router's
         reasons (deadline, min-out, pools), and "engine: below initial margin" unless the
         account meets IM afterwards or its H_MM did not fall. The output is what the engine's
         balance actually gained (the Router is not trusted for it); cash may go negative.
    @param account The account whose collateral is swapped.
    @param token_in The cash token or the underlying token; the other one comes out.
    @param pools The pools, as for Router.swap_split.
    @param amounts_in Token units of token_in per pool.
    @param min_total_out Least total output, in token units of the other token.
    @param deadline Last valid block timestamp.
    @return The output in token units.
    """
    self._only_owner_or_operator(account)
    self._require_new_risk_allowed()
    assert self.router.address != empty(address), "engine: no router"
    to_underlying: bool = token_in == self.cash_token.address
    assert to_underlying or token_in == self.underlying_token.address, "engine: unknown token"
    token_out: IERC20 = self.underlying_token
    if not to_underlying:
        token_out = self.cash_token
    total_in: uint256 = 0
    for amount: uint256 in amounts_in:
        total_in += amount
    for pool: address in pools:
        assert self.is_venue[pool], "engine: unknown venue"
    self._accrue()
    market: risk.Market = self._market()
    before: risk.Portfolio = self._portfolio(account, market.spot)
    # Effects on the input side first, then the swap, then the credit of what arrived.
    wad_in: uint256 = total_in * self.underlying_scale
    if to_underlying:
        wad_in = total_in * self.cash_scale
        self._debit_cash(account, wad_in)
    else:
        self._add_underlying(account, -convert(wad_in, int256))
    balance: uint256 = staticcall token_out.balanceOf(self)
    assert extcall IERC20(token_in).approve(self.router.address, total_in, default_return_value=True), "engine: approve failed"
    extcall self.router.swap_split(token_in, token_out.address, pools, amounts_in, min_total_out, self, deadline)
    out: uint256 = staticcall token_out.balanceOf(self) - balance
    # Oracle value of the output against the input, both in USD wad: at most MAX_SWAP_LOSS lost.
    spot: uint256 = convert(market.spot, uint256)
    value_in: uint256 = wad_in
    wad_out: uint256 = out * self.cash_scale
    value_out: uint256 = wad_out
    if to_underlying:
        wad_out = out * self.underlying_scale
        value_out = wad_out * spot // WAD
        self._add_underlying(account, convert(wad_out, int256))
    else:
        value_in = wad_in * spot // WAD
        self._add_cash(account, convert(wad_out, int256), True)
    assert value_out * WAD >= value_in * (WAD - MAX_SWAP_LOSS), "engine: swap loss too large"
    loss: uint256 = 0
    if value_in > value_out:
        loss = value_in - value_out
    if msg.sender != account:
        # An operator's losses add up per day against the budget the account set, so repeated
        # (sandwiched) round trips cannot bleed it.
        day: uint256 = block.timestamp // 86400
        packed: uint256 = self._hedge_loss[account]
        used: uint256 = 0
        if packed >> 192 == day:
            used = packed & (2**192 - 1)
        used += loss
        assert used <= self.hedge_budget[account], "engine: hedge budget exceeded"
        self._hedge_loss[account] = (day << 192) | used
    log Swap(account=account, token_in=token_in, amount_in=total_in, amount_out=out, loss=loss)
    self._require_margin_rule(before, self._portfolio(account, market.spot), market)
    return out


# ---------------------------------------------------------------------------------------------
# Liquidation hooks (the Liquidator only)
# ---------------------------------------------------------------------------------------------


@external
@view
def risk_inputs(account: address) -> (risk.Portfolio, risk.Market):
    """
    @notice What the margin model sees of an account: its portfolio (cash, underlying, the
            position words as stored, each with its expiry word: the packed vol entry while live, the
            settlement price once expired) and the market (spot, confidence, time, the
            configured reference vol (the floor of the account's sigma_ref) and the
            VolOracle's packed limits). Pass them to the RiskCalculator with `im`/`mm` and
            `grid` to reproduce every number the engine computes.
    @param account The account.
    @return (portfolio, market).
    """
    market: risk.Market = self._market()
    return self._portfolio(account, market.spot), market


@external
def move_portfolio(account: address, receiver: address, fraction: uint256):
    """
    @notice Move `fraction` of every position and of the underlying balance of `account` to
            `receiver`: the Liquidator's bid. The cash side of a bid (the account's cash share
            and the price) is one net `move_cash`.
    @dev Expired, settled positions of both accounts settle into cash first. Each moved amount
         is the account's amount times fraction, rounded toward zero, so fraction = 1e18 moves
         everything exactly. Not paused by the guardian. Reverts "engine: not liquidator",
         "engine: bad fraction", "engine: self move", "engine: too many positions".
    @param account The liquidated account.
    @param receiver The bidder's account.
    @param fraction The fraction to move, a wad in (0, 1e18].
    """
    self._only_liquidator()
    assert fraction > 0 and fraction <= WAD and account != receiver, "engine: bad move"
    self._settle_expired(account)
    self._settle_expired(receiver)
    f: int256 = convert(fraction, int256)
    words: DynArray[uint256, MAX_POSITIONS] = self._positions[account]
    for packed: uint256 in words:
        # |size| <= 2**96 and f <= 1e18: the product fits easily; unsafe_div (SDIV) truncates
        # toward zero, as // does.
        moved: int256 = unsafe_div(unsafe_mul(positions.size(packed), f), IWAD)
        if moved != 0:
            self._add_position(account, packed >> SIZE_BITS, -moved)
            self._add_position(receiver, packed >> SIZE_BITS, moved)
    underlying: uint256 = self.underlying_balance[account] * fraction // WAD
    self.underlying_balance[account] -= underlying
    self.underlying_balance[receiver] += underlying
    if self._cash_word[account] & PERP_HOLDER != 0:
        # Both perps settle at the index, then q * fraction (toward zero) moves; interest
        # accrues first, logged before PerpBook's event.
        self._accrue()
        source_cash: int256 = 0
        receiver_cash: int256 = 0
        source_cash, receiver_cash = extcall self.perp_book.move(account, receiver, fraction, convert(self._spot()[0], int256))
        self._add_cash(account, source_cash, True)
        self._add_cash(receiver, receiver_cash, True)
        self._cash_word[receiver] |= PERP_HOLDER
    log PortfolioMoved(account=account, receiver=receiver, fraction=fraction)


@external
def move_cash(sender: address, receiver: address, amount: uint256):
    """
    @notice Move `amount` USD (wad) of cash from `sender` to `receiver`: a bid's payment, the
            insurance fund's share of the discount or its payment for an insolvent account.
    @dev The sender's cash may go negative (the Liquidator checks margin and the fund's
         balance). Reverts "engine: not liquidator".
    @param sender The paying account.
    @param receiver The receiving account.
    @param amount USD wad.
    """
    self._only_liquidator()
    self._add_cash(sender, -convert(amount, int256), False)
    self._add_cash(receiver, convert(amount, int256), False)
    log CashMoved(sender=sender, receiver=receiver, amount=amount)


@external
def socialize_loss(receiver: address, amount: uint256):
    """
    @notice Socialize a loss the insurance fund could not cover and credit `amount` to
            `receiver` (the insolvent account whose loss is realized, or the bidder paid to
            take it): lower the supply index so that every other positive balance together
            loses `amount` (rounded against them), and credit the receiver for what its own
            shares lost too, so it is never charged its own payment. Debts (borrow shares and
            the borrow index) are untouched. What exceeds the other balances (the index stays
            at 0.01 or above) is recorded in `deficit`: cash credited that no balance backs.
    @dev Reverts "engine: not liquidator".
    @param receiver The account credited.
    @param amount USD wad.
    """
    self._only_liquidator()
    indices: uint256 = self._accrue()
    si: uint256 = interest.supply_index(indices)
    totals: uint256 = self._totals
    own: uint256 = self._cash_word[receiver] & SHARES_MASK
    others: uint256 = interest.supply_shares(totals) - own
    # The supply-index cut that takes `amount` from the other balances, rounded up, keeping
    # the index at MIN_SUPPLY_INDEX or above (share counts stay within the totals' bits).
    cut: uint256 = 0
    if others > 0 and si > interest.MIN_SUPPLY_INDEX:
        cut = min((amount * WAD + others - 1) // others, si - interest.MIN_SUPPLY_INDEX)
    covered: uint256 = min(amount, others * cut // WAD)
    if cut > 0:
        self._indices = interest.with_indices(indices, si - cut)
        # The cut is a loss of the suppliers, not a reserve.
        self._reserve_offset += convert(interest.supply_shares(totals) * cut, int256)
    if covered < amount:
        self.deficit += amount - covered
    # The receiver's shares lost own * cut / 1e18 with the index: credited back, rounded down.
    self._add_cash(receiver, convert(amount + own * cut // WAD, int256), True)
    log LossSocialized(receiver=receiver, amount=amount, deficit=amount - covered, supply_index=si - cut)


@external
def collect_reserve() -> uint256:
    """
    @notice Pay the interest reserve (the reserve factor's share of the interest, and every
            rounding kept) into the insurance fund: the liquidator's cash (anyone).
    @dev Reverts "engine: no liquidator".
    @return The amount paid, USD wad (rounded down).
    """
    fund: address = self.liquidator
    assert fund != empty(address), "engine: no liquidator"
    self._accrue()
    amount: uint256 = self._reserve()
    self._reserve_offset += convert(amount * WAD, int256)
    self._add_cash(fund, convert(amount, int256), True)
    log ReserveCollected(fund=fund, amount=amount)
    return amount


@external
def accrue():
    """
    @notice Accrue interest to now (anyone); every cash touch does it first, once a block.
    """
    self._accrue()


@internal
@view
def _reserve() -> uint256:
    totals: uint256 = self._totals
    indices: uint256 = self._indices_now()
    return convert(
        convert(interest.borrow_shares(totals) * interest.borrow_index(indices), int256)
        - convert(interest.supply_shares(totals) * interest.supply_index(indices), int256)
        - self._reserve_offset,
        uint256,
    ) // WAD


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------


@external
@view
def margin(account: address) -> (int256, int256, int256):
    """
    @notice (MtM, H_IM, H_MM) of an account, all USD wads; H_MM < 0 means liquidatable.
    @dev Full scenario grid for both modes (the cost grows with positions x scenarios).
    @param account The account.
    @return mtm, health_im, health_mm.
    """
    market: risk.Market = self._market()
    portfolio: risk.Portfolio = self._portfolio(account, market.spot)
    return staticcall calculator.margin(portfolio, market, self._im(), self._mm(), self._grid())


@external
@view
def health(account: address, is_im: bool) -> (int256, uint256):
    """
    @notice H_IM or H_MM of an account and its witness scenario index.
    @param account The account.
    @param is_im True for initial margin, False for maintenance.
    @return health (USD wad), witness (w = s * (2n + 1) + (j + n); s: 0 down, 1 flat, 2 up).
    """
    market: risk.Market = self._market()
    portfolio: risk.Portfolio = self._portfolio(account, market.spot)
    return self._health(portfolio, market, is_im)


@external
@view
def scenario_health(account: address, scenario: uint256, is_im: bool) -> int256:
    """
    @notice One scenario's value minus the contingency: V_w - A. Negative proves H < 0.
    @dev The IM scenarios are IM's grid (w < 3 (2n + 1)) and then MM's (w - 3 (2n + 1), valued
         with MM's parameters), as H_IM covers both. Reverts "risk: bad scenario" for an index
         outside the grid.
    @param account The account.
    @param scenario The scenario index (see `health`).
    @param is_im True for initial margin, False for maintenance.
    @return V_w - A, a USD wad.
    """
    grid: risk.Grid = self._grid()
    w: uint256 = scenario
    mode: risk.Mode = self._mm()
    mm_offset: uint256 = 3 * (2 * grid.n + 1)
    if is_im and w >= mm_offset:
        w -= mm_offset
    elif is_im:
        mode = self._im()
    market: risk.Market = self._market()
    portfolio: risk.Portfolio = self._portfolio(account, market.spot)
    return staticcall calculator.scenario_health(portfolio, market, mode, grid, w)


@external
@view
def account_greeks(account: address) -> (int256, int256, int256, int256):
    """
    @notice Net delta (units of underlying), gamma, vega (per 1.0 vol) and theta (per year)
            of the account's options plus the underlying it holds, all wads.
    @param account The account.
    @return delta, gamma, vega, theta.
    """
    market: risk.Market = self._market()
    portfolio: risk.Portfolio = self._portfolio(account, market.spot)
    return staticcall calculator.greeks(portfolio, market)



@external
@view
def packed_positions(account: address) -> DynArray[uint256, MAX_POSITIONS]:
    """
    @notice The account's positions as stored, each (series_id << 108) | size, with the signed
            size (wad) in 108-bit two's complement (storage order; keeper/series.py decodes).
    @param account The account.
    @return The packed positions.
    """
    return self._positions[account]


@external
@view
def series(series_id: uint256) -> Series:
    """
    @notice A series' expiry, strike, type and whether it is listed (all zero if unknown).
    @param series_id The id (from 1).
    @return The Series struct.
    """
    return self._load_series(series_id)


@external
@view
def cash(account: address) -> int256:
    """
    @notice The account's cash balance in USD (wad) with interest accrued to now: supply
            shares at the supply index (rounded down), or minus borrow shares at the borrow
            index (rounded up).
    @param account The account.
    @return Cash, signed.
    """
    return self._cash(account)


@external
@view
def cash_shares(account: address) -> uint256:
    """
    @notice The account's supply shares (0 when it owes).
    @param account The account.
    @return Supply shares.
    """
    return self._cash_word[account] & SHARES_MASK


@external
@view
def cash_debt(account: address) -> uint256:
    """
    @notice The account's borrow shares (0 when it holds supply shares).
    @param account The account.
    @return Borrow shares.
    """
    return self._cash_word[account] >> 128


@external
@view
def cash_pool() -> (uint256, uint256, uint256, uint256, uint256, uint256, uint256):
    """
    @notice The cash pool accrued to now.
    @return supply_index, borrow_index (wads), total supply, total borrows (USD wad),
            utilization (a wad), borrow rate (a wad per year), reserve not yet collected (USD
            wad).
    """
    indices: uint256 = self._indices_now()
    totals: uint256 = self._totals
    supply: uint256 = interest.supply_value(interest.supply_shares(totals), indices)
    borrows: uint256 = interest.debt_value(interest.borrow_shares(totals), indices)
    u: uint256 = interest.utilization(supply, borrows)
    return interest.supply_index(indices), interest.borrow_index(indices), supply, borrows, u, interest.rate(totals >> interest.PARAMS_SHIFT, u), self._reserve()


@external
@view
def cash_totals() -> (uint256, uint256, uint256, uint256):
    """
    @notice Total supply shares, total borrow shares, the packed rate parameters and the
            utilization cap.
    @return (supply shares, borrow shares, the rate's parameters in basis points as
            contracts/margin/interest.vy packs them (keeper/interest.py RateParams.packed),
            the utilization cap (a wad)).
    """
    totals: uint256 = self._totals
    return interest.supply_shares(totals), interest.borrow_shares(totals), totals >> interest.PARAMS_SHIFT, self._utilization_cap



# ---------------------------------------------------------------------------------------------
# Administration
# ---------------------------------------------------------------------------------------------


@external
@view
def risk_params() -> (risk.Mode, risk.Mode, risk.Grid, uint256, uint256):
    """
    @notice The margin parameters, as `set_risk_params` takes them and `RiskParams` logs them.
    @return im, mm, grid, ref_vol (a wad), max_positions.
    """
    return self._im(), self._mm(), self._grid(), params.ref_vol(self._params[3]), params.max_positions(self._params[3])


@external
def set_risk_params(im_: risk.Mode, mm_: risk.Mode, grid_: risk.Grid, ref_vol_: uint256, max_positions_: uint256):
    """
    @notice Set the margin parameters (risk admin), within the hard bounds.
    @dev The hard bounds are contracts/margin/params.vy's: outside them it reverts "engine: bad
         params", and "engine: IM weaker than MM" unless every IM parameter is at least its MM
         counterpart. Reverts "engine: not risk admin".
    @param im_ Initial-margin parameters.
    @param mm_ Maintenance-margin parameters.
    @param grid_ Grid parameters.
    @param ref_vol_ Reference vol, a wad.
    @param max_positions_ Positions per account.
    """
    self._only_risk_admin()
    self._set_risk_params(im_, mm_, grid_, ref_vol_, max_positions_)


@external
def set_caps(cash_cap_: uint256, underlying_cap_: uint256):
    """
    @notice Supply caps on total deposits, in wad (risk admin). Reverts "engine: not risk admin".
    @param cash_cap_ Cap on total cash deposits (USD wad).
    @param underlying_cap_ Cap on total underlying held (wad units).
    """
    self._only_risk_admin()
    self.cash_cap = cash_cap_
    self.underlying_cap = underlying_cap_
    log Caps(cash_cap=cash_cap_, underlying_cap=underlying_cap_)


@external
def set_interest_params(base: uint256, slope1: uint256, slope2: uint256, kink: uint256, reserve_factor: uint256, utilization_cap_: uint256):
    """
    @notice Set the cash pool's rate, reserve factor and utilization cap (risk admin): the
            borrow rate is base + slope1 min(U, kink) + slope2 max(U - kink, 0) a year; a
            withdrawal or swap that borrows must leave U <= utilization_cap, which keeps
            1 - utilization_cap of the supply in the engine for withdrawals.
    @dev Interest accrues at the old rate up to now first. Wads in whole basis points (1e14),
         within base <= 0.1, slope1 <= 1, slope2 <= 3, kink in [0.1, 0.99], reserve_factor <=
         0.2, utilization_cap in [0.5, 1] ("engine: bad interest params"). Reverts "engine:
         not risk admin".
    @param base Rate at zero utilization, a wad per year.
    @param slope1 Rate per unit of utilization below the kink.
    @param slope2 Rate per unit of utilization above the kink.
    @param kink The kink utilization U*.
    @param reserve_factor Share of the interest paid to the insurance fund.
    @param utilization_cap_ Utilization cap on new borrowing.
    """
    self._only_risk_admin()
    # The bounds live with the pure module; the calculator checks and packs (size).
    packed: uint256 = staticcall calculator.pack_interest_params(base, slope1, slope2, kink, reserve_factor, utilization_cap_)
    self._accrue()
    self._totals = (packed << interest.PARAMS_SHIFT) | (self._totals & (2**interest.PARAMS_SHIFT - 1))
    self._utilization_cap = utilization_cap_
    log InterestParams(base=base, slope1=slope1, slope2=slope2, kink=kink, reserve_factor=reserve_factor, utilization_cap=utilization_cap_)


@external
def set_paused(paused_: bool):
    """
    @notice Pause or resume new risk (fills) (guardian). Reverts "engine: not guardian".
    @param paused_ True to pause.
    """
    assert msg.sender == self.guardian, "engine: not guardian"
    self.paused = paused_
    log Paused(paused=paused_)


@external
def set_role(role: String[16], account: address):
    """
    @notice Give "risk_admin", "guardian", "liquidator" or "router" to an address, or set the
            "orders" book (OrderBook) or the "perps" book (PerpBook), each once (owner).
            Reverts "ownable: not owner", "engine: unknown role" (also for a book already set:
            replacing one would orphan its fills or positions).
    @param role The role's name.
    @param account The new holder.
    """
    ownable.check_owner()
    h: bytes32 = keccak256(role)
    if h == keccak256("risk_admin"):
        self.risk_admin = account
    elif h == keccak256("guardian"):
        self.guardian = account
    elif h == keccak256("liquidator"):
        self.liquidator = account
    elif h == keccak256("router"):
        self.router = IRouter(account)
    elif h == keccak256("orders") and self.order_book.address == empty(address):
        self.order_book = OrderBook.__interface__(account)
    elif h == keccak256("perps") and self.perp_book.address == empty(address):
        self.perp_book = PerpBook.__interface__(account)
    else:
        raise "engine: unknown role"
    log RoleSet(role=role, account=account)


@external
def set_venue(pool: address, listed: bool):
    """
    @notice List or delist a pool as a hedge-swap venue (owner): `swap` routes only through
            listed pools. Reverts "ownable: not owner".
    @param pool The pool.
    @param listed True to list, False to delist.
    """
    ownable.check_owner()
    self.is_venue[pool] = listed
    log VenueSet(pool=pool, listed=listed)


# ---------------------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------------------


@internal
def _deposit(account: address, token: address, amount: uint256):
    assert amount > 0, "engine: zero amount"
    amount_wad: uint256 = 0
    if token == self.cash_token.address:
        amount_wad = amount * self.cash_scale
        self._add_cash(account, convert(amount_wad, int256), True)
        # Cap on the cash the pool holds for positive balances.
        assert interest.supply_value(interest.supply_shares(self._totals), self._indices) <= self.cash_cap, "engine: cap exceeded"
    elif token == self.underlying_token.address:
        amount_wad = amount * self.underlying_scale
        self._add_underlying(account, convert(amount_wad, int256))
    else:
        raise "engine: unknown token"
    log Deposit(account=account, payer=msg.sender, token=token, amount=amount, amount_wad=amount_wad)
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), "engine: transfer failed"


@internal
def _accrue() -> uint256:
    """
    @dev Accrue interest to now (the first cash touch of a block; later ones read one warm
         slot) and return the indices word.
    """
    indices: uint256 = self._indices
    if indices & interest.TIME_MASK == block.timestamp:
        return indices
    accrued: uint256 = self._indices_now()
    self._indices = accrued
    if accrued >> interest.SUPPLY_SHIFT != indices >> interest.SUPPLY_SHIFT:
        log Accrued(supply_index=interest.supply_index(accrued), borrow_index=interest.borrow_index(accrued))
    return accrued


@internal
@view
def _indices_now() -> uint256:
    """
    @dev The indices word accrued to now, without writing it (views).
    """
    indices: uint256 = self._indices
    if indices & interest.TIME_MASK == block.timestamp:
        return indices
    return interest.accrue(indices, self._totals, block.timestamp)


@internal
def _add_cash(account: address, amount: int256, flow: bool):
    """
    @dev Accrue, then credit (amount > 0: repay debt, burning borrow shares rounded down,
         then mint supply shares rounded down) or debit (burn supply shares rounded up, then
         borrow the rest in borrow shares rounded up) an account's cash, in USD wad. `flow`:
         the amount enters or leaves the pool (tokens, payoffs, losses), so the reserve
         offset follows the shares; a transfer between accounts (False: a premium, a
         liquidation's cash) leaves it, and the transfer's rounding, which is never against
         the pool, stays in the reserve.
    """
    indices: uint256 = self._accrue()
    ib: uint256 = interest.borrow_index(indices)
    si: uint256 = interest.supply_index(indices)
    ds: int256 = 0
    db: int256 = 0
    word: uint256 = self._cash_word[account]
    if amount >= 0:
        credit: uint256 = convert(amount, uint256)
        owed_shares: uint256 = word >> 128
        if owed_shares > 0:
            owed: uint256 = interest.debt_value(owed_shares, indices)
            if credit >= owed:
                db = -convert(owed_shares, int256)
                credit -= owed
            else:
                db = -convert(credit * WAD // ib, int256)
                credit = 0
        ds = convert(credit * WAD // si, int256)
    else:
        debit: uint256 = convert(-amount, uint256)
        shares: uint256 = word & SHARES_MASK
        # The debit in supply shares, rounded up.
        needed: uint256 = (debit * WAD + si - 1) // si
        if needed <= shares:
            ds = -convert(needed, int256)
        else:
            # Burn every share; what they did not cover (their value rounded down) is
            # borrowed, in borrow shares rounded up.
            ds = -convert(shares, int256)
            db = convert(((debit - shares * si // WAD) * WAD + ib - 1) // ib, int256)
    self._totals = interest.add_totals(self._totals, ds, db)
    # Unchecked: -ds <= the supply shares and -db <= the borrow shares by construction above,
    # and add_totals bounds every total (so every account's shares) below 2**96: neither lane
    # wraps or spills into the other.
    self._cash_word[account] = unsafe_add(
        unsafe_add(word, convert(convert(ds, bytes32), uint256)),
        unsafe_mul(convert(convert(db, bytes32), uint256), 2**128),
    )
    if flow:
        # Keeps the reserve B I_b - S I_s - offset unchanged by the flow.
        self._reserve_offset += db * convert(ib, int256) - ds * convert(si, int256)


@internal
def _debit_cash(account: address, amount: uint256):
    """
    @dev A debit that may borrow (a withdrawal, a swap's input): if it raised the account's
         debt, utilization afterwards must be within the cap ("engine: utilization cap").
    """
    debt: uint256 = self._cash_word[account] >> 128
    self._add_cash(account, -convert(amount, int256), True)
    if self._cash_word[account] >> 128 > debt:
        assert interest.totals_utilization(self._totals, self._indices) <= self._utilization_cap, "engine: utilization cap"


@internal
def _add_underlying(account: address, amount: int256):
    """
    @dev Credit (within the supply cap) or debit an account's underlying balance, in wad.
         Reverts "engine: cap exceeded", "engine: insufficient underlying".
    """
    if amount >= 0:
        self.underlying_balance[account] += convert(amount, uint256)
        self.total_underlying += convert(amount, uint256)
        assert self.total_underlying <= self.underlying_cap, "engine: cap exceeded"
        return
    debit: uint256 = convert(-amount, uint256)
    assert self.underlying_balance[account] >= debit, "engine: insufficient underlying"
    self.underlying_balance[account] -= debit
    self.total_underlying -= debit


@internal
@view
def _cash(account: address) -> int256:
    # An account holds shares or debt, never both: `_add_cash` repays all debt before it mints
    # shares and burns every share before it adds debt. So one balance slot is read, not two.
    # Interest accrued to now.
    indices: uint256 = self._indices_now()
    word: uint256 = self._cash_word[account]
    if word & SHARES_MASK != 0:
        return convert(interest.supply_value(word & SHARES_MASK, indices), int256)
    # debt_value < 2**96 * 2**112 / 1e18, so the negation cannot overflow.
    return unsafe_sub(0, convert(interest.debt_value(word >> 128, indices), int256))


@internal
def _add_position(account: address, series_id: uint256, delta: int256):
    """
    @dev Add `delta` to the account's position in a series; a position that reaches 0 is
         removed. Reverts "engine: too many positions", "engine: size too large".
    """
    n: uint256 = len(self._positions[account])
    for i: uint256 in range(MAX_POSITIONS):
        if i == n:
            break
        packed: uint256 = self._positions[account][i]
        if packed >> SIZE_BITS == series_id:
            size: int256 = positions.size(packed) + delta
            assert size <= IMAX_SIZE and size >= -IMAX_SIZE, "engine: size too large"
            if size == 0:
                self._positions[account][i] = self._positions[account][n - 1]
                self._positions[account].pop()
            else:
                self._positions[account][i] = positions.pack(series_id, size)
            return
    assert n < params.max_positions(self._params[3]), "engine: too many positions"
    self._positions[account].append(positions.pack(series_id, delta))


@internal
def _settle_expired(account: address):
    """
    @dev Move expired, settled positions into cash at their intrinsic value (rounded for the
         protocol) and remove them.
    """
    kept: DynArray[uint256, MAX_POSITIONS] = []
    for packed: uint256 in self._positions[account]:
        s: Series = self._series_terms(packed >> SIZE_BITS)
        price: uint256 = self.settlement_price[s.expiry]
        if price == 0:
            kept.append(packed)
            continue
        size: int256 = positions.size(packed)
        intrinsic: uint256 = 0
        if s.is_call and price > s.strike:
            intrinsic = price - s.strike
        elif not s.is_call and price < s.strike:
            intrinsic = s.strike - price
        # Longs are credited rounded down, shorts debited rounded up.
        product: int256 = size * convert(intrinsic, int256)
        payoff: int256 = product // IWAD
        if product < 0 and product % IWAD != 0:
            payoff -= 1
        self._add_cash(account, payoff, True)
        log PositionSettled(account=account, series_id=packed >> SIZE_BITS, size=size, payoff=payoff)
    if len(kept) != len(self._positions[account]):
        self._positions[account] = kept


@internal
@view
def _portfolio(account: address, spot: int256) -> risk.Portfolio:
    """
    @dev The account as the risk module sees it: cash, underlying and each position word as
         stored with its expiry word: the expiry's packed vol entry while live (one batched VolOracle
         read; the RiskCalculator evaluates the smile), the settlement price once expired; and
         its perp's terms at index price `spot` (PerpBook.margin_terms, funding accrued to now).
    """
    words: DynArray[uint256, MAX_POSITIONS] = self._positions[account]
    expiries: DynArray[uint256, MAX_POSITIONS] = []
    for packed: uint256 in words:
        expiries.append(positions.expiry(packed))
    limits: uint256 = 0
    words_of_expiry: DynArray[uint256, MAX_POSITIONS] = []
    limits, words_of_expiry = staticcall vol_oracle.packed_entries(expiries)
    held: DynArray[risk.Position, MAX_POSITIONS] = []
    for i: uint256 in range(len(words), bound=MAX_POSITIONS):
        expiry_word: uint256 = words_of_expiry[i]
        if expiries[i] <= block.timestamp:
            expiry_word = self.settlement_price[expiries[i]]
        held.append(risk.Position(word=words[i], expiry_word=expiry_word))
    return risk.Portfolio(
        cash=self._cash(account), underlying=convert(self.underlying_balance[account], int256), positions=held,
        perp=self._perp_terms(account, spot),
    )


@internal
@view
def _perp_terms(account: address, spot: int256) -> risk.PerpTerms:
    """
    @dev The account's perp as the margin model sees it at index price `spot` (zero for an
         account that never held it).
    """
    perp: risk.PerpTerms = empty(risk.PerpTerms)
    if self._cash_word[account] & PERP_HOLDER != 0:
        perp.size, perp.price, perp.owed = staticcall self.perp_book.margin_terms(account, spot)
    return perp


@internal
@pure
def _with_perp(after: risk.Portfolio, before: risk.Portfolio) -> risk.Portfolio:
    """
    @dev `after` with the cash and perp terms of `before`: the portfolio before a perp fill,
         which changed nothing else.
    """
    out: risk.Portfolio = after
    out.cash = before.cash
    out.perp = before.perp
    return out


@internal
@view
def _market() -> risk.Market:
    """
    @dev Spot and confidence (one oracle read), the VolOracle's limits and the configured
         reference vol (each account's sigma_ref starts from it: risk.reference_vol).
    """
    spot: uint256 = 0
    confidence: uint256 = 0
    spot, confidence = self._spot()
    limits: uint256 = 0
    entries: DynArray[uint256, MAX_POSITIONS] = []
    limits, entries = staticcall vol_oracle.packed_entries([])
    return risk.Market(
        spot=convert(spot, int256), confidence=convert(confidence, int256), now=block.timestamp,
        ref_vol=convert(params.ref_vol(self._params[3]), int256), vol_limits=limits,
    )


@internal
@view
def _spot() -> (uint256, uint256):
    spot: uint256 = 0
    confidence: uint256 = 0
    oldest: uint256 = 0
    spot, confidence, oldest = staticcall oracle.price()
    assert spot > 0 and spot <= MAX_SPOT, "engine: spot out of range"
    return spot, confidence


@internal
@view
def _require_initial_margin(account: address):
    if not self._holds_risk(account) and self._cash(account) >= 0:
        return
    market: risk.Market = self._market()
    portfolio: risk.Portfolio = self._portfolio(account, market.spot)
    assert not self._holds_stale(portfolio, market.vol_limits), "engine: stale vol"
    assert self._meets_initial_margin(portfolio, market), "engine: below initial margin"


@internal
@view
def _holds_risk(account: address) -> bool:
    """
    @dev Whether the account holds an option position or a perp.
    """
    if len(self._positions[account]) > 0:
        return True
    return self._cash_word[account] & PERP_HOLDER != 0 and (staticcall self.perp_book.position(account)).size != 0


@internal
@view
def _require_margin_rule(before: risk.Portfolio, after: risk.Portfolio, market: risk.Market) -> bool:
    """
    @dev After a risk-increasing action: H_IM >= 0, or the action reduced the account's risk
         (RiskCalculator.risk_reduced: H_IM no lower, H_MM not pushed below zero). Returns
         whether the account is below initial margin (its fill is then held to the price band).
    """
    if len(after.positions) == 0 and after.perp.size == 0 and after.cash >= 0:
        return False
    # A stale vol entry is not conservative for every side of a book (it marks longs up as
    # well): while an expiry the account holds is stale, it may only reduce its risk.
    stale: bool = self._holds_stale(after, market.vol_limits)
    if not stale and self._meets_initial_margin(after, market):
        return False
    assert staticcall calculator.risk_reduced(before, after, market, self._im(), self._mm(), self._grid()), "engine: below initial margin"
    return True


@internal
@view
def _holds_stale(portfolio: risk.Portfolio, limits: uint256) -> bool:
    """
    @dev Whether the account holds a live position whose expiry's vol entry is stale.
    """
    for p: risk.Position in portfolio.positions:
        if positions.expiry(p.word) > block.timestamp and smile.is_stale(p.expiry_word, limits, block.timestamp):
            return True
    return False


@internal
@view
def _require_fair_price(series_id: uint256, expiry: uint256, price: uint256, market: risk.Market):
    """
    @dev The fill's unit price lies in the series' fair-price band (RiskCalculator.price_band:
         the model's value at MM's down and up vol states).
    """
    limits: uint256 = 0
    entries: DynArray[uint256, MAX_POSITIONS] = []
    limits, entries = staticcall vol_oracle.packed_entries([expiry])
    low: int256 = 0
    high: int256 = 0
    low, high = staticcall calculator.price_band(
        risk.Position(word=positions.pack(series_id, IWAD), expiry_word=entries[0]), market, self._mm(), self._grid()
    )
    assert convert(price, int256) >= low and convert(price, int256) <= high, "engine: price outside band"


@internal
@view
def _meets_initial_margin(portfolio: risk.Portfolio, market: risk.Market) -> bool:
    """
    @dev H_IM >= 0 (H_IM = min(IM's grid, H_MM)), by the health floor when it suffices.
    """
    return staticcall calculator.meets_initial_margin(portfolio, market, self._im(), self._mm(), self._grid())


@internal
@view
def _health(portfolio: risk.Portfolio, market: risk.Market, is_im: bool) -> (int256, uint256):
    """
    @dev H_IM (min of IM's grid and H_MM, see risk.initial_health) or H_MM and the witness.
    """
    if is_im:
        h: int256 = 0
        w: uint256 = 0
        mm_h: int256 = 0
        h, w, mm_h = staticcall calculator.initial_health(portfolio, market, self._im(), self._mm(), self._grid())
        return h, w
    return staticcall calculator.health(portfolio, market, self._mm(), self._grid())


@internal
@view
def _mm() -> risk.Mode:
    return params.mode(self._params[0], self._params[1], params.mm_a_perp_bp(self._params[3]))


@internal
@view
def _im() -> risk.Mode:
    return params.mode(self._params[4], self._params[5], params.im_a_perp_bp(self._params[5]))


@internal
@view
def _grid() -> risk.Grid:
    return params.grid(self._params[1], self._params[2], self._params[3])


@internal
def _set_risk_params(im_: risk.Mode, mm_: risk.Mode, grid_: risk.Grid, ref_vol_: uint256, max_positions_: uint256):
    # The hard bounds live with the model: RiskCalculator.pack_params checks them (reverting
    # "engine: bad params" or "engine: IM weaker than MM", which this call passes on) and packs
    # the values in the layout params.mode and params.grid read.
    self._params = staticcall calculator.pack_params(im_, mm_, grid_, ref_vol_, max_positions_)
    log RiskParams(im=im_, mm=mm_, grid=grid_, ref_vol=ref_vol_, max_positions=max_positions_)


@internal
@view
def _require_new_risk_allowed():
    """
    @dev New risk (fills, swaps) needs the engine unpaused and the sequencer past its grace.
    """
    assert not self.paused, "engine: paused"
    self._require_sequencer_up()


@internal
@view
def _require_sequencer_up():
    assert staticcall ISequencerGuard(oracle.address).risk_increase_allowed(), "engine: sequencer grace"


@internal
@view
def _only_owner_or_operator(account: address):
    assert msg.sender == account or self.is_operator[account][msg.sender], "engine: not authorised"


@internal
@view
def _only_risk_admin():
    assert msg.sender == self.risk_admin, "engine: not risk admin"


@internal
@view
def _only_liquidator():
    assert msg.sender == self.liquidator, "engine: not liquidator"


@internal
@view
def _scale(token: IERC20) -> uint256:
    decimals: uint8 = staticcall IERC20Detailed(token.address).decimals()
    assert decimals <= 18, "engine: decimals above 18"
    return 10 ** (18 - convert(decimals, uint256))


@internal
@view
def _load_series(series_id: uint256) -> Series:
    s: Series = self._series_terms(series_id)
    s.listed = self._listed[series_id]
    return s


@internal
@pure
def _series_terms(series_id: uint256) -> Series:
    """
    @dev A series' terms from its id (no storage read); `listed` is left False.
    """
    s: Series = empty(Series)
    s.expiry, s.strike, s.is_call = positions.terms(series_id)
    return s
