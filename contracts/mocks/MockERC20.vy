# pragma version ~=0.4.3
# pragma optimize gas
"""
@title MockERC20: an ERC20 with configurable decimals and an open faucet
@license MIT
@notice FOR LOCAL CHAINS AND TESTS ONLY: `mint` is open to anyone. Never deploy it to a
        public network.

        Standard ERC20 otherwise: Transfer and Approval events, `transferFrom` spends the
        allowance except an infinite one (max uint256), transfers to the zero address revert.
        `burn(amount)` destroys the caller's own tokens.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

implements: IERC20
implements: IERC20Detailed

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

name: public(String[64])
symbol: public(String[32])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(name_: String[64], symbol_: String[32], decimals_: uint8):
    """
    @notice Deploy an empty token.
    @param name_ Token name.
    @param symbol_ Token symbol.
    @param decimals_ Decimals (e.g. 6 for a USDC-like cash token, 18 for WETH-like).
    """
    self.name = name_
    self.symbol = symbol_
    self.decimals = decimals_


@external
def transfer(receiver: address, amount: uint256) -> bool:
    """
    @notice Move `amount` from the caller to `receiver`.
    @dev Reverts "erc20: transfer to zero address" or "erc20: insufficient balance".
    @param receiver Recipient.
    @param amount Token units.
    @return True.
    """
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    """
    @notice Move `amount` from `sender` to `receiver` using the caller's allowance.
    @dev Reverts "erc20: insufficient allowance" (an allowance of max uint256 is never spent),
         then as `transfer`.
    @param sender Owner of the tokens.
    @param receiver Recipient.
    @param amount Token units.
    @return True.
    """
    allowed: uint256 = self.allowance[sender][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "erc20: insufficient allowance"
        # allowed >= amount: no underflow.
        self.allowance[sender][msg.sender] = unsafe_sub(allowed, amount)
    self._transfer(sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Let `spender` move up to `amount` of the caller's tokens (replaces the allowance).
    @param spender The spender.
    @param amount The new allowance; max uint256 is infinite.
    @return True.
    """
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def mint(receiver: address, amount: uint256):
    """
    @notice Faucet: create `amount` tokens for `receiver`. Open to anyone (mock only).
    @dev Reverts "erc20: mint to zero address"; the total supply is checked for overflow.
    @param receiver Recipient.
    @param amount Token units.
    """
    assert receiver != empty(address), "erc20: mint to zero address"
    self.totalSupply += amount
    # balance <= totalSupply, which did not overflow.
    self.balanceOf[receiver] = unsafe_add(self.balanceOf[receiver], amount)
    log Transfer(sender=empty(address), receiver=receiver, value=amount)


@external
def burn(amount: uint256):
    """
    @notice Destroy `amount` of the caller's tokens.
    @dev Reverts "erc20: insufficient balance".
    @param amount Token units.
    """
    balance: uint256 = self.balanceOf[msg.sender]
    assert balance >= amount, "erc20: insufficient balance"
    # amount <= balance <= totalSupply: no underflow.
    self.balanceOf[msg.sender] = unsafe_sub(balance, amount)
    self.totalSupply = unsafe_sub(self.totalSupply, amount)
    log Transfer(sender=msg.sender, receiver=empty(address), value=amount)


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "erc20: transfer to zero address"
    balance: uint256 = self.balanceOf[sender]
    assert balance >= amount, "erc20: insufficient balance"
    # amount <= balance; the receiver's balance + amount <= totalSupply: no over/underflow.
    self.balanceOf[sender] = unsafe_sub(balance, amount)
    self.balanceOf[receiver] = unsafe_add(self.balanceOf[receiver], amount)
    log Transfer(sender=sender, receiver=receiver, value=amount)
