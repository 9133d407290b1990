# pragma version ~=0.4.3
"""
@title TestToken: a minimal ERC20 for the venue tests
@license MIT
@notice Test-only token: anyone may mint, the decimals are set at deploy, and two switches make
        `transfer`/`transferFrom` or `approve` return False without moving anything, so tests
        can reach the "transfer failed" and "approve failed" paths of the pool and router, and
        an optional hook makes every transfer call an arbitrary contract first (reentrancy
        tests). Two more switches mimic real tokens' allowance quirks: `allowance_cap` stores
        at most that allowance (like UNI/COMP's uint96 allowances, so even an "infinite"
        approval runs down), and `approve_needs_zero` rejects changing a non-zero allowance to
        another non-zero value (like USDT).
        An allowance of max_value(uint256) is infinite: `transferFrom` does not decrement it.
"""

from ethereum.ercs import IERC20

implements: IERC20

name: public(String[32])
symbol: public(String[16])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
fail_transfers: public(bool)
fail_approvals: public(bool)
allowance_cap: public(uint256)
approve_needs_zero: public(bool)
hook_target: public(address)
hook_data: public(Bytes[1024])


@deploy
def __init__(name_: String[32], symbol_: String[16], decimals_: uint8):
    """
    @notice Deploy a token with the given metadata and no supply.
    @param name_ Token name.
    @param symbol_ Token symbol.
    @param decimals_ Decimals reported by `decimals()`.
    """
    self.name = name_
    self.symbol = symbol_
    self.decimals = decimals_


@external
def mint(to: address, amount: uint256):
    """
    @notice Mint `amount` to `to` (open to anyone: test token).
    @param to Recipient.
    @param amount Amount in token units.
    """
    self.balanceOf[to] += amount
    self.totalSupply += amount
    log IERC20.Transfer(sender=empty(address), receiver=to, value=amount)


@external
def set_failures(transfers: bool, approvals: bool):
    """
    @notice Make transfers and/or approvals return False without effect.
    @param transfers True: `transfer` and `transferFrom` return False.
    @param approvals True: `approve` returns False.
    """
    self.fail_transfers = transfers
    self.fail_approvals = approvals


@external
def set_allowance_quirks(cap: uint256, needs_zero: bool):
    """
    @notice Cap stored allowances at `cap` (0: no cap, max_value is infinite) and/or require
            resetting an allowance to zero before setting another non-zero value.
    @param cap Allowance cap (0 disables it).
    @param needs_zero True: approve(non-zero) over a non-zero allowance reverts.
    """
    self.allowance_cap = cap
    self.approve_needs_zero = needs_zero


@external
def set_hook(target: address, data: Bytes[1024]):
    """
    @notice Make every transfer first call `target` with `data` (empty target: no hook).
    @dev A failing hook call reverts the transfer with the callee's revert data.
    @param target Contract to call.
    @param data Calldata.
    """
    self.hook_target = target
    self.hook_data = data


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    if self.hook_target != empty(address):
        raw_call(self.hook_target, self.hook_data)
    assert self.balanceOf[sender] >= amount, "token: insufficient balance"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log IERC20.Transfer(sender=sender, receiver=receiver, value=amount)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    """
    @notice Move `amount` from the caller to `receiver`.
    @param receiver Recipient.
    @param amount Amount.
    @return True, or False when transfers are switched off.
    """
    if self.fail_transfers:
        return False
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    """
    @notice Move `amount` from `sender` to `receiver` against the caller's allowance.
    @param sender Owner of the tokens.
    @param receiver Recipient.
    @param amount Amount.
    @return True, or False when transfers are switched off.
    """
    if self.fail_transfers:
        return False
    allowed: uint256 = self.allowance[sender][msg.sender]
    if allowed != max_value(uint256) or self.allowance_cap != 0:
        assert allowed >= amount, "token: insufficient allowance"
        self.allowance[sender][msg.sender] = allowed - amount
    self._transfer(sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Set the caller's allowance for `spender`.
    @param spender Spender.
    @param amount Allowance (max_value(uint256) is infinite).
    @return True, or False when approvals are switched off.
    """
    if self.fail_approvals:
        return False
    if self.approve_needs_zero:
        assert amount == 0 or self.allowance[msg.sender][spender] == 0, \
            "token: approve from non-zero"
    stored: uint256 = amount
    if self.allowance_cap != 0:
        stored = min(amount, self.allowance_cap)
    self.allowance[msg.sender][spender] = stored
    log IERC20.Approval(owner=msg.sender, spender=spender, value=stored)
    return True
