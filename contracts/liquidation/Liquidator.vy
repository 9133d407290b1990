# pragma version ~=0.4.3
# pragma optimize gas
"""
@title Liquidator: Dutch-auction partial liquidation, insurance fund, loss socialization
@license MIT
@notice Keeps Kappa solvent when prices move against an account (DESIGN.md "Liquidation").

        Auctions. `start_auction(account, witness)` opens an auction on an account whose
        maintenance health is below the liquidation threshold (H_MM < 0; while the L2
        sequencer is down or in its grace period, H_MM < -grace_liquidation_buffer). The proof
        is a full check (witness = NO_WITNESS) or one scenario index: any scenario with
        V_w - A_MM below the threshold proves H_MM is (the cheap path for keepers). The
        discount to MtM then grows linearly from `d_start` to `d_max` over `duration` seconds.

        Bids. `bid(account, fraction, price_limit)` moves `fraction` of every position, of the
        perp (settled into cash first, so it moves at the index), of the underlying and of the
        cash balance (shares or debt) to the bidder's engine account,
        which pays fraction * MtM * (1 - d) to the account plus `fund_share` of the discount
        fraction * MtM * d to the insurance fund. The fraction is capped so the account's H_MM
        comes back to `buffer`, not beyond. Derivation: every scenario value and the
        contingency are linear in the portfolio, so after a bid of f at price P = MtM (1 - d)
            V'_js = (1 - f) V_js + f P,    A' = (1 - f) A,    H'(f) = (1 - f) H + f P,
        and H'(f) = buffer at f* = (buffer - H) / (P - H). P > 0 > H for a solvent account, so
        f* > 0 and H' rises with f: a bid never lowers the account's H_MM (position sizes
        move rounded toward zero, which keeps them on the account's side). The cap is lifted,
        and the whole account may go, when MtM is at or below `dust` or the remainder's MtM
        would be. The bidder must meet initial margin afterwards; `price_limit` bounds the
        bidder's total cash outlay (signed; negative means the bidder is paid) so a bid
        cannot execute against a moved auction.

        Insolvent accounts. A loss is realized as soon as the Liquidator measures it (a full
        check in `start_auction`, every bid): the insurance fund pays the account its negative
        MtM, and what the fund cannot pay is socialized (the engine lowers the cash share price
        of every other positive balance, never a debt; beyond the whole cash pool it records a
        deficit), so a deposit made later does not pay for it and a saver who waits does not
        escape it. The account is then worth zero, and bidders take it in fractions of any
        size (several small bidders can share one): a bid of f is paid f * d * R, where
        R = MtM - H_MM >= 0 is the maintenance requirement it takes on, by the fund, and the
        rest socialized likewise, with the bidder's own balance left out (it is never charged
        its own reward). Every socialized amount is recorded in `bad_debt` with a BadDebt
        event, so socialized loss always equals recorded bad debt.

        Insurance fund: the Liquidator's own cash balance in the engine. Anyone deposits; the
        owner withdraws, but not while any auction is open (a solvent one can turn insolvent
        with the next price move).

        Rounding favours the protocol: the bidder's payment and the fund's share round up, the
        fund's payment to a bidder rounds down, cash moved to the bidder with the fraction
        rounds down.
"""

from ethereum.ercs import IERC20

from contracts.auth import ownable
from contracts.math import wad
from contracts.margin import risk
import contracts.margin.MarginEngine as MarginEngine
import contracts.margin.RiskCalculator as RiskCalculator
from contracts.interfaces import ISequencerGuard

initializes: ownable

exports: (
    ownable.owner,
    ownable.pending_owner,
    ownable.transfer_ownership,
    ownable.accept_ownership,
)

WAD: constant(uint256) = wad.UWAD
IWAD: constant(int256) = wad.WAD
# The `witness` that asks for a full check instead of one scenario.
NO_WITNESS: public(constant(uint256)) = max_value(uint256)
# Hard bounds on the owner's parameters.
MAX_DISCOUNT: constant(uint256) = WAD // 2
MIN_DURATION: constant(uint256) = 60
MAX_DURATION: constant(uint256) = 7 * 86400
MAX_USD: constant(uint256) = 10**9 * WAD


event AuctionStarted:
    account: indexed(address)
    witness: uint256
    health: int256

event Bid:
    account: indexed(address)
    bidder: indexed(address)
    fraction: uint256
    mtm: int256
    health: int256
    discount: uint256
    price: int256
    fund_fee: uint256

event AuctionEnded:
    account: indexed(address)

event BadDebt:
    account: indexed(address)
    amount: uint256

event InsuranceDeposit:
    payer: indexed(address)
    amount: uint256

event InsuranceWithdraw:
    receiver: indexed(address)
    amount: uint256

event Params:
    d_start: uint256
    d_max: uint256
    duration: uint256
    fund_share: uint256
    buffer: uint256
    dust: uint256


engine: public(immutable(MarginEngine.__interface__))
calculator: public(immutable(RiskCalculator.__interface__))
sequencer: public(immutable(ISequencerGuard))
cash_token: public(immutable(IERC20))
cash_scale: public(immutable(uint256))

d_start: public(uint256)
d_max: public(uint256)
duration: public(uint256)
fund_share: public(uint256)
buffer: public(uint256)
dust: public(uint256)

# Each open auction's start time (0: none).
_auctions: HashMap[address, uint256]
# open auctions + 1: the counter's slot never returns to zero, so opening the first auction
# rewrites a live slot instead of creating one (~17k gas less).
_open_plus_one: uint256
bad_debt: public(uint256)


@deploy
def __init__(
    engine_: MarginEngine.__interface__,
    d_start_: uint256,
    d_max_: uint256,
    duration_: uint256,
    fund_share_: uint256,
    buffer_: uint256,
    dust_: uint256,
):
    """
    @notice Deploy the Liquidator for `engine_`; the deployer is the owner. The engine's owner
            then gives it the role: engine.set_role("liquidator", this).
    @param engine_ The MarginEngine.
    @param d_start_ Discount at the auction's start, a wad.
    @param d_max_ Largest discount, reached after `duration_`, a wad.
    @param duration_ Seconds from d_start to d_max.
    @param fund_share_ Share of the discount paid to the insurance fund, a wad.
    @param buffer_ H_MM (USD wad) a capped bid restores.
    @param dust_ MtM (USD wad) at or below which an account may be taken whole.
    """
    ownable.__init__()
    self._open_plus_one = 1
    engine = engine_
    calculator = staticcall engine_.calculator()
    # The engine's oracle aggregator is also its sequencer guard.
    sequencer = ISequencerGuard((staticcall engine_.oracle()).address)
    cash_token = staticcall engine_.cash_token()
    cash_scale = staticcall engine_.cash_scale()
    self._set_params(d_start_, d_max_, duration_, fund_share_, buffer_, dust_)


# ---------------------------------------------------------------------------------------------
# Auctions
# ---------------------------------------------------------------------------------------------


@external
@nonreentrant
def start_auction(account: address, witness: uint256):
    """
    @notice Open an auction on a liquidatable account (anyone).
    @dev Liquidatable: H_MM < sequencer.liquidation_threshold() (0, or -grace_liquidation_buffer
         while the sequencer is down or in grace; the uptime feed is read only when H_MM lies
         in [-grace_liquidation_buffer, 0), where the answer depends on it). Proof by a full
         check (witness = NO_WITNESS) or by one scenario w with V_w - A_MM below the
         threshold (w = s * (2n + 1) + (j + n), see MarginEngine.health). A full check that
         finds MtM < 0 realizes the loss at once (see the contract notice). Reverts
         "liquidator: auction open", "liquidator: healthy" (full check), "liquidator: witness
         does not prove" (a scenario that proves nothing), "risk: bad scenario" (an index
         outside the grid).
    @param account The account.
    @param witness A scenario index, or NO_WITNESS for the full check.
    """
    assert self._auctions[account] == 0, "liquidator: auction open"
    health: int256 = 0
    mtm: int256 = 0
    if witness == NO_WITNESS:
        portfolio: risk.Portfolio = empty(risk.Portfolio)
        market: risk.Market = empty(risk.Market)
        portfolio, market = staticcall engine.risk_inputs(account)
        w: uint256 = 0
        im: risk.Mode = empty(risk.Mode)
        mm: risk.Mode = empty(risk.Mode)
        grid: risk.Grid = empty(risk.Grid)
        im, mm, grid = self._margin_params()
        mtm, health, w = staticcall calculator.assess(portfolio, market, mm, grid)
        assert self._below_threshold(health), "liquidator: healthy"
    else:
        health = staticcall engine.scenario_health(account, witness, False)
        assert self._below_threshold(health), "liquidator: witness does not prove"
    self._auctions[account] = block.timestamp
    self._open_plus_one += 1
    log AuctionStarted(account=account, witness=witness, health=health)
    if mtm < 0:
        self._realize(account, mtm)


@internal
@view
def _below_threshold(health: int256) -> bool:
    """
    @dev health < sequencer.liquidation_threshold(). The threshold is 0 or -buffer (buffer =
         grace_liquidation_buffer), so the sequencer's status decides only for health in
         [-buffer, 0): a non-negative health never qualifies, one below -buffer always does,
         and the uptime feed (a cold call) is read only in between.
    """
    if health >= 0:
        return False
    # The aggregator bounds the buffer to 1e30 < 2**255 (a guard answering more reverts here).
    if health < -convert(staticcall sequencer.grace_liquidation_buffer(), int256):
        return True
    return health < staticcall sequencer.liquidation_threshold()


@external
@nonreentrant
def bid(account: address, fraction: uint256, price_limit: int256) -> (uint256, int256):
    """
    @notice Take `fraction` of an auctioned account into the caller's engine account.
    @dev Solvent account (MtM > 0): the fraction taken is min(fraction, f*) with f* the cap that
         restores H_MM to `buffer` (see the contract notice), lifted when MtM or the remainder's
         MtM is at or below `dust`; the caller pays ceil(f MtM (1 - d)) to the account and
         ceil(fund_share f MtM d) to the insurance fund. Insolvent account (MtM <= 0): a loss
         (MtM < 0) is realized first (the fund pays it to the account, the rest socialized),
         then the caller takes `fraction` and is paid floor(f d R) (R = MtM - H_MM) by the
         fund, any shortfall socialized over the others and recorded as bad debt. A bid that
         takes the whole account, or restores H_MM >= 0, ends the auction. Reverts
         "liquidator: no auction", "liquidator: self bid", "liquidator: healthy" (H_MM >= 0:
         end the auction instead), "liquidator: bad fraction", "liquidator: price above
         limit", "liquidator: bidder below initial margin", and the engine's "engine: too many
         positions".
    @param account The auctioned account.
    @param fraction The largest fraction wanted, a wad in (0, 1e18].
    @param price_limit The most cash (USD wad, signed) the caller accepts to pay in total.
    @return (fraction taken, the caller's total cash outlay: negative when it is paid).
    """
    start: uint256 = self._auctions[account]
    assert start != 0, "liquidator: no auction"
    assert msg.sender != account, "liquidator: self bid"
    assert fraction > 0 and fraction <= WAD, "liquidator: bad fraction"
    portfolio: risk.Portfolio = empty(risk.Portfolio)
    market: risk.Market = empty(risk.Market)
    portfolio, market = staticcall engine.risk_inputs(account)
    # Positions in settled expiries and the perp's value turn into cash first, so the cash
    # moved with the fraction is the cash the MtM counts (the perp then moves at the index,
    # with nothing unsettled).
    settled: bool = False
    for p: risk.Position in portfolio.positions:
        settled = settled or risk.settlement(p, market.now) != 0
    if settled:
        extcall engine.settle_positions(account)
    if portfolio.perp.size != 0:
        extcall engine.settle_perp(account)
        settled = True
    if settled:
        portfolio, market = staticcall engine.risk_inputs(account)
    mtm: int256 = 0
    health: int256 = 0
    w: uint256 = 0
    # One read of the engine's parameters serves the account's MM check and the bidder's IM.
    im: risk.Mode = empty(risk.Mode)
    mm: risk.Mode = empty(risk.Mode)
    grid: risk.Grid = empty(risk.Grid)
    im, mm, grid = self._margin_params()
    mtm, health, w = staticcall calculator.assess(portfolio, market, mm, grid)
    assert health < 0, "liquidator: healthy"
    d: uint256 = self._discount(start)

    taken: uint256 = WAD
    price: int256 = 0
    fee: uint256 = 0
    if mtm > 0:
        # The cash share of the fraction, rounded down for the bidder (toward -infinity).
        taken = self._capped_fraction(fraction, mtm, health, d)
        price = wad.mul_up(mtm, wad.mul_up(convert(taken, int256), convert(WAD - d, int256)))
        discount: int256 = wad.mul_up(mtm, wad.mul_up(convert(taken, int256), convert(d, int256)))
        fee = convert(wad.mul_up(discount, convert(self.fund_share, int256)), uint256)
    else:
        taken = fraction
        # The bidder is paid f d R, rounded down (R = MtM - H_MM >= 0: the requirement the
        # fraction carries, which realizing the loss leaves unchanged).
        reward: int256 = wad.mul_down(wad.mul_down(mtm - health, convert(taken, int256)), convert(d, int256))
        price = -reward
    outlay: int256 = price + convert(fee, int256)
    assert outlay <= price_limit, "liquidator: price above limit"

    # Effects: the auction's bookkeeping, then the engine moves (the engine is trusted).
    insolvent: bool = mtm <= 0
    # A bid that takes the whole account, or the whole requirement of a solvent one
    # (H'(f) = (1 - f) H + f P >= 0), ends the auction.
    if taken == WAD or (not insolvent and self._restores(mtm, health, d, taken)):
        self._auctions[account] = 0
        self._open_plus_one -= 1
        log AuctionEnded(account=account)
    log Bid(
        account=account, bidder=msg.sender, fraction=taken, mtm=mtm, health=health, discount=d,
        price=outlay, fund_fee=fee,
    )

    cash: int256 = portfolio.cash
    to_account: int256 = price
    if insolvent:
        to_account = 0
        if mtm < 0:
            self._realize(account, mtm)
            cash = staticcall engine.cash(account)
    cash_taken: int256 = wad.mul_down(cash, convert(taken, int256))
    extcall engine.move_portfolio(account, msg.sender, taken)
    # Net cash from the bidder to the account: the price (solvent accounts only) less the
    # account's cash the bidder takes along with the fraction.
    self._move_cash(msg.sender, account, to_account - cash_taken)
    if fee > 0:
        extcall engine.move_cash(msg.sender, self, fee)
    if insolvent:
        self._pay(account, msg.sender, convert(-price, uint256))

    # The bidder's H_IM >= 0: the health floor proves it for a well-funded bidder without
    # the scenario grid; otherwise the calculator runs the full grid.
    portfolio, market = staticcall engine.risk_inputs(msg.sender)
    assert staticcall calculator.meets_initial_margin(portfolio, market, im, mm, grid), "liquidator: bidder below initial margin"
    return taken, outlay


@external
@nonreentrant
def end_auction(account: address):
    """
    @notice Close an auction once the account is healthy again (anyone).
    @dev Full check. Reverts "liquidator: no auction", "liquidator: unhealthy".
    @param account The account.
    """
    assert self._auctions[account] != 0, "liquidator: no auction"
    health: int256 = (staticcall engine.health(account, False))[0]
    assert health >= 0, "liquidator: unhealthy"
    self._auctions[account] = 0
    self._open_plus_one -= 1
    log AuctionEnded(account=account)


@external
@view
def discount(account: address) -> uint256:
    """
    @notice The auction's current discount to MtM, a wad (0 when there is no auction).
    @param account The account.
    @return d(t) = d_start + (d_max - d_start) * min(elapsed, duration) / duration.
    """
    start: uint256 = self._auctions[account]
    if start == 0:
        return 0
    return self._discount(start)


@external
@view
def auction_start(account: address) -> uint256:
    """
    @notice When the account's auction started (unix seconds), 0 when none is open.
    @param account The account.
    @return The start timestamp.
    """
    return self._auctions[account]


@external
@view
def open_auctions() -> uint256:
    """
    @notice Open auctions; insurance withdrawals wait until there are none.
    @return The count.
    """
    return self._open_plus_one - 1


# ---------------------------------------------------------------------------------------------
# Insurance fund
# ---------------------------------------------------------------------------------------------


@external
@nonreentrant
def deposit_insurance(amount: uint256):
    """
    @notice Add cash tokens to the insurance fund (anyone; approve this contract first).
    @dev The fund is this contract's cash balance in the engine. Reverts "liquidator: zero
         amount", "liquidator: transfer failed" and the engine's deposit reasons.
    @param amount Cash-token units (the token's decimals).
    """
    assert amount > 0, "liquidator: zero amount"
    log InsuranceDeposit(payer=msg.sender, amount=amount)
    assert extcall cash_token.transferFrom(msg.sender, self, amount, default_return_value=True), "liquidator: transfer failed"
    assert extcall cash_token.approve(engine.address, amount, default_return_value=True), "liquidator: approve failed"
    extcall engine.deposit(cash_token.address, amount)


@external
@nonreentrant
def withdraw_insurance(amount: uint256, receiver: address):
    """
    @notice Withdraw cash tokens from the insurance fund (owner), never while an auction is
            open.
    @dev Reverts "ownable: not owner", "liquidator: auction open" and the engine's
         withdraw reasons (e.g. more than the fund holds: "engine: below initial margin").
    @param amount Cash-token units.
    @param receiver Where the tokens go.
    """
    ownable.check_owner()
    assert self._open_plus_one == 1, "liquidator: auction open"
    log InsuranceWithdraw(receiver=receiver, amount=amount)
    extcall engine.withdraw(cash_token.address, amount, receiver)


@external
@view
def insurance_fund() -> int256:
    """
    @notice The insurance fund: this contract's cash balance in the engine, a USD wad.
    @return The fund.
    """
    return staticcall engine.cash(self)


# ---------------------------------------------------------------------------------------------
# Administration
# ---------------------------------------------------------------------------------------------


@external
def set_params(d_start_: uint256, d_max_: uint256, duration_: uint256, fund_share_: uint256, buffer_: uint256, dust_: uint256):
    """
    @notice Set the auction parameters (owner), within hard bounds: d_start <= d_max <= 0.5,
            duration in [60 s, 7 days], fund_share <= 1, buffer and dust <= 1e9 USD.
    @dev Reverts "ownable: not owner", "liquidator: bad params". Open auctions use the new
         values from then on.
    @param d_start_ Discount at the start, a wad.
    @param d_max_ Largest discount, a wad.
    @param duration_ Seconds from d_start to d_max.
    @param fund_share_ Insurance fund's share of the discount, a wad.
    @param buffer_ H_MM a capped bid restores, USD wad.
    @param dust_ MtM at or below which an account may go whole, USD wad.
    """
    ownable.check_owner()
    self._set_params(d_start_, d_max_, duration_, fund_share_, buffer_, dust_)


# ---------------------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------------------


@internal
def _set_params(d_start_: uint256, d_max_: uint256, duration_: uint256, fund_share_: uint256, buffer_: uint256, dust_: uint256):
    assert (
        d_start_ <= d_max_ and d_max_ <= MAX_DISCOUNT and duration_ >= MIN_DURATION and duration_ <= MAX_DURATION
        and fund_share_ <= WAD and buffer_ <= MAX_USD and dust_ <= MAX_USD
    ), "liquidator: bad params"
    self.d_start = d_start_
    self.d_max = d_max_
    self.duration = duration_
    self.fund_share = fund_share_
    self.buffer = buffer_
    self.dust = dust_
    log Params(d_start=d_start_, d_max=d_max_, duration=duration_, fund_share=fund_share_, buffer=buffer_, dust=dust_)


@internal
@view
def _margin_params() -> (risk.Mode, risk.Mode, risk.Grid):
    """
    @dev The engine's IM and MM parameters and its grid (MarginEngine.risk_params).
    """
    im: risk.Mode = empty(risk.Mode)
    mm: risk.Mode = empty(risk.Mode)
    grid: risk.Grid = empty(risk.Grid)
    ref_vol: uint256 = 0
    max_positions: uint256 = 0
    im, mm, grid, ref_vol, max_positions = staticcall engine.risk_params()
    return im, mm, grid


@internal
@view
def _discount(start: uint256) -> uint256:
    elapsed: uint256 = min(block.timestamp - start, self.duration)
    return self.d_start + (self.d_max - self.d_start) * elapsed // self.duration


@internal
@view
def _capped_fraction(wanted: uint256, mtm: int256, health: int256, d: uint256) -> uint256:
    """
    @dev min(wanted, f*) with f* = (buffer - H) / (P - H), P = MtM (1 - d), rounded up so the
         buffer is reached; no cap when MtM, or the remainder's MtM, is at most `dust`.
         Preconditions: MtM > 0 > H and d <= 0.5, so P > 0 > H and the denominator is positive.
    """
    dust: int256 = convert(self.dust, int256)
    if mtm <= dust:
        return wanted
    p: int256 = mtm * convert(WAD - d, int256) // IWAD
    cap: int256 = wad.div_up(convert(self.buffer, int256) - health, p - health)
    if cap >= IWAD:
        return wanted
    taken: uint256 = min(wanted, convert(cap, uint256))
    # The remainder would be dust: let the bidder take the whole account.
    if mtm * convert(WAD - taken, int256) // IWAD <= dust:
        return wanted
    return taken


@internal
def _move_cash(sender: address, receiver: address, amount: int256):
    if amount > 0:
        extcall engine.move_cash(sender, receiver, convert(amount, uint256))
    elif amount < 0:
        extcall engine.move_cash(receiver, sender, convert(-amount, uint256))


@internal
@view
def _restores(mtm: int256, health: int256, d: uint256, taken: uint256) -> bool:
    """
    @dev Whether a solvent account's bid of `taken` brings H_MM to >= 0: H'(f) = (1 - f) H +
         f P with P = MtM (1 - d) (see the contract notice), rounded down.
    """
    p: int256 = mtm * convert(WAD - d, int256) // IWAD
    f: int256 = convert(taken, int256)
    return wad.mul_down(health, IWAD - f) + wad.mul_down(p, f) >= 0


@internal
def _realize(account: address, mtm: int256):
    """
    @dev Realize an insolvent account's loss -MtM: the fund pays it into the account, the rest
         is socialized (recorded as bad debt). The account is then worth zero.
    """
    self._pay(account, account, convert(-mtm, uint256))


@internal
def _pay(account: address, receiver: address, amount: uint256):
    """
    @dev The insurance fund (with the engine's interest reserve collected into it first) pays
         `amount` to `receiver` for the insolvent `account`; what it cannot pay is socialized over every other positive balance (the receiver's own left
         out) and recorded as bad debt.
    """
    # The interest reserve belongs to the fund: collect it before the fund pays.
    extcall engine.collect_reserve()
    fund: int256 = staticcall engine.cash(self)
    paid: uint256 = 0
    if fund > 0:
        paid = min(amount, convert(fund, uint256))
    if paid > 0:
        extcall engine.move_cash(self, receiver, paid)
    shortfall: uint256 = amount - paid
    if shortfall > 0:
        self.bad_debt += shortfall
        log BadDebt(account=account, amount=shortfall)
        extcall engine.socialize_loss(receiver, shortfall)
