# pragma version ~=0.4.3
"""
@title SilentToken: an ERC20 whose transfer, transferFrom and approve return nothing
@license MIT
@notice Test-only token in the style of USDT: the three state-changing calls succeed or revert
        and return no data, so tests can check that every contract that moves tokens accepts
        such a token (`default_return_value=True`) instead of reverting on the missing bool.
        Anyone may mint.
"""

name: public(String[32])
symbol: public(String[16])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


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
def transfer(receiver: address, amount: uint256):
    """
    @notice Move `amount` from the caller to `receiver`; reverts on a short balance.
    @param receiver Recipient.
    @param amount Token units.
    """
    self._move(msg.sender, receiver, amount)


@external
def transferFrom(sender: address, receiver: address, amount: uint256):
    """
    @notice Move `amount` from `sender` to `receiver` against the caller's allowance.
    @param sender Owner of the tokens.
    @param receiver Recipient.
    @param amount Token units.
    """
    self.allowance[sender][msg.sender] -= amount
    self._move(sender, receiver, amount)


@external
def approve(spender: address, amount: uint256):
    """
    @notice Set `spender`'s allowance over the caller's tokens.
    @param spender The spender.
    @param amount Token units.
    """
    self.allowance[msg.sender][spender] = amount


@external
def mint(to: address, amount: uint256):
    """
    @notice Mint `amount` to `to` (open to anyone: test token).
    @param to Recipient.
    @param amount Token units.
    """
    self.balanceOf[to] += amount
    self.totalSupply += amount


@internal
def _move(sender: address, receiver: address, amount: uint256):
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
