# pragma version ~=0.4.3
"""
@title ownable: one owner, transferred in two steps
@license MIT
@notice The ownership of every Kappa contract that has an owner: `initializes: ownable`, call
        `ownable.__init__()` first in the constructor (the deployer becomes the owner), export
        `owner`, `pending_owner`, `transfer_ownership` and `accept_ownership`, and guard owner
        functions with `ownable.check_owner()`.

        Two steps: the owner proposes a new owner, who must accept; a mistyped address can
        never take over, and the owner can replace or cancel (propose the zero address) a
        pending transfer. Both steps emit an event.
"""

event OwnershipTransferStarted:
    previous_owner: indexed(address)
    new_owner: indexed(address)

event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)


owner: public(address)
pending_owner: public(address)


@deploy
def __init__():
    """
    @notice Make the deployer the owner.
    """
    self.owner = msg.sender
    log OwnershipTransferred(previous_owner=empty(address), new_owner=msg.sender)


@external
def transfer_ownership(new_owner: address):
    """
    @notice Start transferring ownership; `new_owner` must then call accept_ownership().
    @dev Owner only ("ownable: not owner"). The zero address cancels a pending transfer.
    @param new_owner The proposed owner.
    """
    self.check_owner()
    self.pending_owner = new_owner
    log OwnershipTransferStarted(previous_owner=msg.sender, new_owner=new_owner)


@external
def accept_ownership():
    """
    @notice Complete a transfer started by transfer_ownership().
    @dev Reverts "ownable: not pending owner" unless called by the pending owner.
    """
    assert msg.sender == self.pending_owner, "ownable: not pending owner"
    previous: address = self.owner
    self.owner = msg.sender
    self.pending_owner = empty(address)
    log OwnershipTransferred(previous_owner=previous, new_owner=msg.sender)


@internal
@view
def check_owner():
    """
    @notice Revert "ownable: not owner" unless msg.sender is the owner.
    """
    assert msg.sender == self.owner, "ownable: not owner"
