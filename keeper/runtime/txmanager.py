"""Transactions of one signer: the policy (pure) and a thin sender (ape / web3 I/O).

`TxManager` (pure, unit-tested without a node) decides:
- nonces: tracked locally (the next one to use) and reconciled with the node's transaction
  counts every block: with nothing in flight the node's pending count wins; a node count ahead
  of ours (the key was used elsewhere) moves ours up; in-flight transactions whose nonce the
  node consumed are resolved by their receipts;
- fees: EIP-1559, `max_fee = min(2 base_fee + tip, cap)`, `tip = min(suggested, tip cap)`; no
  transaction is sent while the base fee is above the cap;
- replacement: a transaction not mined `replace_after_blocks` after it was sent is re-signed at
  the same nonce with both fees bumped by `bump_percent` (>= 10%, what nodes require), unless
  that would exceed the fee cap or the hourly spend cap (then it waits, logged once per block):
  `replacement` answers the new fees or the reason;
- reorgs: a transaction that was mined and whose receipt is gone was reorged out. If the node
  still holds its nonce (its pending count is above it) it stays in flight as sent; if the node
  forgot it, it leaves the manager (`reorged`) and its nonce is re-read from the node, so the
  action is planned and simulated again from the rolled-back mirror instead of being resent;
- confirmation depth: a mined transaction is final once `confirmations` blocks are on top;
- the hourly spend cap: gas actually paid in the trailing hour plus the worst case (gas limit
  x max fee) of everything in flight plus the new transaction must stay within the cap;
- transactions this manager did not send (a previous process of the same signer, before a
  restart) still in the node's pool: nothing new is sent for up to `replace_after_blocks`
  blocks, so that their effects reach the mirror first and an action is not sent twice;
- dry run: everything is planned and simulated, `admit` answers as usual, and the bot logs
  "would send" instead of sending; no nonce is consumed.

`Sender` is the I/O: the signer's nonces, the fee inputs, `eth_call` simulation with decoded
revert reasons (ape), signing and `eth_sendRawTransaction`, receipts.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

GWEI = 10**9
ETHER = 10**18
HOUR = 3600


@dataclass(frozen=True)
class TxPolicy:
    max_fee_wei: int
    max_priority_fee_wei: int
    gas_limit: int
    replace_after_blocks: int
    bump_percent: float
    hourly_spend_cap_wei: int
    confirmations: int = 0
    max_pending: int = 16
    dry_run: bool = False

    @classmethod
    def from_settings(cls, s: Any) -> TxPolicy:
        """From keeper.runtime.settings.KeeperSettings."""
        t = s.tx
        return cls(
            max_fee_wei=int(t.max_fee_gwei * GWEI),
            max_priority_fee_wei=int(t.max_priority_fee_gwei * GWEI),
            gas_limit=int(t.gas_limit),
            replace_after_blocks=int(t.replace_after_blocks),
            bump_percent=float(t.bump_percent),
            hourly_spend_cap_wei=int(t.hourly_spend_cap_eth * ETHER),
            confirmations=int(s.confirmations),
            max_pending=int(t.max_pending),
            dry_run=bool(s.dry_run),
        )


def initial_fees(base_fee: int, suggested_tip: int, p: TxPolicy) -> tuple[int, int] | None:
    """(max_fee, tip) for a new transaction, or None while the base fee is above the cap."""
    if base_fee > p.max_fee_wei:
        return None
    tip = min(max(suggested_tip, 0), p.max_priority_fee_wei)
    max_fee = min(2 * base_fee + tip, p.max_fee_wei)
    return max_fee, min(tip, max_fee)


def bumped_fees(max_fee: int, tip: int, p: TxPolicy, base_fee: int = 0) -> tuple[int, int] | None:
    """Both fees raised by bump_percent (rounded up, and by at least 1 wei), and the max fee at
    least the current base fee raised by the same bump plus the tip (within the cap): nodes
    refuse a transaction whose max fee is below the base fee, so after a base-fee spike a
    plain bump could never land. None if the bump would exceed the cap, or the base fee is
    above it."""
    factor = 1.0 + p.bump_percent / 100.0
    new_tip = max(math.ceil(tip * factor), tip + 1)
    new_max = max(math.ceil(max_fee * factor), max_fee + 1, new_tip)
    if new_max > p.max_fee_wei or base_fee > p.max_fee_wei:
        return None
    new_max = max(new_max, min(math.ceil(base_fee * factor) + new_tip, p.max_fee_wei))
    return new_max, new_tip


@dataclass
class PendingTx:
    key: tuple[str, str]
    nonce: int
    to: str
    data: bytes
    gas_limit: int
    max_fee: int
    tip: int
    sent_block: int
    hashes: list[str] = field(default_factory=list)
    replacements: int = 0
    mined_block: int | None = None
    status: int | None = None
    was_mined: bool = False  # a receipt was seen once (a later absence means a reorg)
    gas_used: int = 0
    effective_price: int = 0

    @property
    def worst_cost(self) -> int:
        return self.gas_limit * self.max_fee


@dataclass(frozen=True)
class Receipt:
    """What the manager needs of a receipt."""

    txn_hash: str
    block: int
    status: int
    gas_used: int
    effective_price: int


class TxManager:
    """Nonce, fee, replacement, confirmation and spend policy of one signer (pure state)."""

    def __init__(self, policy: TxPolicy) -> None:
        self.policy = policy
        self.next_nonce: int | None = None
        self.pending: dict[int, PendingTx] = {}
        self.spent: deque[tuple[int, int]] = deque()  # (timestamp, wei)
        self.reorged: list[PendingTx] = []  # dropped by the last reconcile after a reorg
        self.foreign_pending = 0  # the signer's pool transactions this manager did not send
        self.foreign_since: int | None = None  # the head when they were first seen
        self.head = -1

    # -- admission -------------------------------------------------------------------------

    def in_flight(self) -> set[tuple[str, str]]:
        return {tx.key for tx in self.pending.values()}

    def spent_last_hour(self, now: int) -> int:
        while self.spent and self.spent[0][0] <= now - HOUR:
            self.spent.popleft()
        return sum(w for _, w in self.spent)

    def admit(self, key: tuple[str, str], max_fee: int, now: int) -> str | None:
        """None if a new transaction for `key` at `max_fee` may be sent, else the reason."""
        if key in self.in_flight():
            return "already in flight"
        if len(self.pending) >= self.policy.max_pending:
            return f"{len(self.pending)} transactions in flight (max_pending)"
        if self.next_nonce is None:
            return "nonce unknown (not reconciled with the node yet)"
        waiting = self.foreign_since is not None and (
            self.head - self.foreign_since < self.policy.replace_after_blocks
        )
        if waiting:
            return (
                f"{self.foreign_pending} earlier transactions of this signer are still "
                "pending (sent before a restart)"
            )
        return self._within_cap(max_fee, now)

    def decide(self, key: tuple[str, str], max_fee: int, now: int) -> tuple[str, str | None]:
        """("send", None), ("dry_run", None) or ("refuse", reason). In dry run the same limits
        apply (in-flight and spend cap) but no nonce is needed or consumed and nothing is
        recorded: the caller logs what it would send."""
        if self.policy.dry_run:
            reason = "already in flight" if key in self.in_flight() else None
            reason = reason or self._within_cap(max_fee, now)
            return ("refuse", reason) if reason else ("dry_run", None)
        reason = self.admit(key, max_fee, now)
        return ("refuse", reason) if reason else ("send", None)

    def _within_cap(
        self, max_fee: int, now: int, gas_limit: int | None = None, release: int = 0
    ) -> str | None:
        committed = sum(tx.worst_cost for tx in self.pending.values() if tx.mined_block is None)
        new = (self.policy.gas_limit if gas_limit is None else gas_limit) * max_fee
        total = self.spent_last_hour(now) + committed - release + new
        if total > self.policy.hourly_spend_cap_wei:
            return (
                f"hourly spend cap: {total / ETHER:.6g} ETH would exceed "
                f"{self.policy.hourly_spend_cap_wei / ETHER:.6g} ETH"
            )
        return None

    def take_nonce(self) -> int:
        if self.next_nonce is None:
            raise RuntimeError("nonce unknown: reconcile with the node first")
        nonce = self.next_nonce
        self.next_nonce += 1
        return nonce

    def record_sent(self, tx: PendingTx, txn_hash: str) -> None:
        tx.hashes.append(txn_hash)
        self.pending[tx.nonce] = tx

    # -- replacement -----------------------------------------------------------------------

    def due_for_replacement(self, block: int) -> list[PendingTx]:
        """Unmined transactions sent at least `replace_after_blocks` blocks ago (by nonce)."""
        n = self.policy.replace_after_blocks
        return [
            tx
            for _, tx in sorted(self.pending.items())
            if tx.mined_block is None and block - tx.sent_block >= n
        ]

    def replacement(
        self, tx: PendingTx, now: int, base_fee: int = 0
    ) -> tuple[tuple[int, int] | None, str | None]:
        """((max_fee, tip), None) for re-signing `tx` at its nonce (bumped_fees at the current
        base fee), or (None, why it waits): the bump or the base fee would pass the fee cap, or
        the bumped worst case would pass the spend cap."""
        fees = bumped_fees(tx.max_fee, tx.tip, self.policy, base_fee)
        if fees is None:
            return None, "a bump would exceed max_fee"
        refusal = self._within_cap(fees[0], now, tx.gas_limit, release=tx.worst_cost)
        if refusal is not None:
            return None, refusal
        return fees, None

    def record_replaced(
        self, tx: PendingTx, max_fee: int, tip: int, txn_hash: str, block: int
    ) -> None:
        tx.max_fee, tx.tip = max_fee, tip
        tx.sent_block = block
        tx.replacements += 1
        tx.hashes.append(txn_hash)

    # -- reconciliation --------------------------------------------------------------------

    def reconcile(
        self,
        node_latest: int,
        node_pending: int,
        head: int,
        now: int,
        receipts: dict[str, Receipt],
    ) -> list[PendingTx]:
        """Bring the local view in line with the node; returns the transactions that became
        final (mined with `confirmations` blocks on top, or whose nonce was used elsewhere).

        node_latest / node_pending: the signer's transaction count at the latest block and
        including the node's pool; receipts: by hash, for the hashes of in-flight transactions
        the node has a receipt for."""
        final: list[PendingTx] = []
        self.reorged = []
        for nonce in sorted(self.pending):
            tx = self.pending[nonce]
            receipt = next((receipts[h] for h in reversed(tx.hashes) if h in receipts), None)
            if receipt is not None:
                tx.mined_block, tx.status = receipt.block, receipt.status
                tx.gas_used, tx.effective_price = receipt.gas_used, receipt.effective_price
                tx.was_mined = True
            elif tx.was_mined and node_pending <= nonce:
                # Reorged out and forgotten by the node: re-plan it (see the module).
                tx.mined_block, tx.status = None, None
                self.reorged.append(self.pending.pop(nonce))
                self.next_nonce = None
                continue
            elif nonce < node_latest:
                # The nonce is used, by none of our hashes: replaced outside this manager.
                tx.mined_block, tx.status = None, None
                final.append(self.pending.pop(nonce))
                continue
            else:
                tx.mined_block = None  # a reorg can un-mine a transaction
            if tx.mined_block is not None and head - tx.mined_block >= self.policy.confirmations:
                self.spent.append((now, tx.gas_used * tx.effective_price))
                final.append(self.pending.pop(nonce))
        self.head = head
        unknown = node_pending - node_latest if not self.pending else 0
        if unknown > 0:
            self.foreign_pending = unknown
            self.foreign_since = head if self.foreign_since is None else self.foreign_since
        else:
            self.foreign_pending, self.foreign_since = 0, None
        if not self.pending:
            self.next_nonce = node_pending
        elif self.next_nonce is None or node_latest > self.next_nonce:
            self.next_nonce = max(node_latest, max(self.pending) + 1)
        return final


# ---------------------------------------------------------------------------------------------
# I/O


class Sender:
    """The signer's side of the chain (ape account, the provider's web3)."""

    def __init__(self, account: Any, provider: Any) -> None:
        self.account = account
        self.provider = provider
        self.w3 = provider.web3
        self.address = str(account.address)
        self.chain_id = int(provider.chain_id)

    def nonces(self) -> tuple[int, int]:
        """(latest, pending) transaction counts of the signer."""
        latest = int(self.w3.eth.get_transaction_count(self.address, "latest"))
        pending = int(self.w3.eth.get_transaction_count(self.address, "pending"))
        return latest, pending

    def fee_inputs(self) -> tuple[int, int]:
        """(base fee of the latest block, the node's suggested priority fee)."""
        block = self.w3.eth.get_block("latest")
        base = int(block.get("baseFeePerGas", 0) or 0)
        try:
            tip = int(self.w3.eth.max_priority_fee)
        except Exception:  # nodes without eth_maxPriorityFeePerGas
            tip = 0
        return base, tip

    def simulate(self, method: Any, args: tuple[Any, ...]) -> tuple[Any, str | None]:
        """eth_call from the signer at the latest block: (decoded result, None) or (None, the
        revert reason). A raw eth_call (web3), not ape's call: ape enriches a revert with a
        trace, which costs seconds per call on a node without step tracing."""
        from web3.exceptions import ContractLogicError

        tx = {
            "from": self.address,
            "to": str(method.contract.address),
            "data": bytes(method.encode_input(*args)),
        }
        try:
            raw = self.w3.eth.call(tx, "latest")
        except ContractLogicError as exc:
            message = str(exc.message or exc).removeprefix("execution reverted: ")
            return None, " ".join(message.split())[:300] or "reverted"
        except ValueError as exc:  # a node error (out of gas, ...): keep it, one line
            return None, " ".join(str(exc).split())[:300]
        abi = method.abis[0]
        decoded = self.provider.network.ecosystem.decode_returndata(abi, bytes(raw))
        return decoded, None

    def send(self, to: str, data: bytes, nonce: int, gas: int, max_fee: int, tip: int) -> str:
        """Sign and broadcast one EIP-1559 transaction; returns its hash."""
        ecosystem = self.provider.network.ecosystem
        txn = ecosystem.create_transaction(
            chain_id=self.chain_id,
            receiver=to,
            sender=self.address,
            data=data,
            nonce=nonce,
            gas_limit=gas,
            max_fee=max_fee,
            max_priority_fee=tip,
            type=2,
            value=0,
        )
        signed = self.account.sign_transaction(txn)
        if signed is None:
            raise RuntimeError("the signer refused to sign")
        raw = signed.serialize_transaction()
        return "0x" + bytes(self.w3.eth.send_raw_transaction(raw)).hex()

    def receipts(self, hashes: list[str]) -> dict[str, Receipt]:
        out: dict[str, Receipt] = {}
        for h in hashes:
            try:
                r = self.w3.eth.get_transaction_receipt(h)
            except Exception:  # not mined (web3 raises TransactionNotFound)
                continue
            if r is None:
                continue
            out[h] = Receipt(
                txn_hash=h,
                block=int(r["blockNumber"]),
                status=int(r["status"]),
                gas_used=int(r["gasUsed"]),
                effective_price=int(r.get("effectiveGasPrice", 0) or 0),
            )
        return out
