"""Sending many transactions quickly on a local anvil node (ape I/O).

ape's full transaction path (local signing in pure Python, gas and fee queries, receipt
processing) costs about a dozen RPC round trips per transaction. On anvil the dev accounts (ape's
test accounts, same mnemonic) are unlocked, so `eth_sendTransaction` with a fixed gas limit and
one `eth_getTransactionReceipt` (anvil mines on arrival) do the same in two. A reverted
transaction is replayed through ape as a call to raise the contract's revert reason.

Elsewhere (eth-tester, public networks) `Sender` uses ape's normal path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GAS = 25_000_000


class TxError(RuntimeError):
    """A transaction reverted; the message carries the revert reason when there is one."""


@dataclass(frozen=True)
class Receipt:
    txn_hash: str
    gas_used: int
    block_number: int
    logs: list[dict[str, Any]]


class Sender:
    """Sends contract transactions from ape accounts; fast on anvil (see the module)."""

    def __init__(self) -> None:
        from ape import networks

        provider = networks.provider
        self.fast = provider.name == "foundry" and provider.network.is_local
        self.w3 = provider.web3 if self.fast else None

    def send(self, method: Any, *args: Any, sender: Any) -> Any:
        """`method(*args, sender=sender)`; returns a receipt with `gas_used` and `txn_hash`."""
        return self.send_many([(method, args, sender)])[0]

    def send_many(self, txs: list[tuple[Any, tuple[Any, ...], Any]]) -> list[Any]:
        """Send independent transactions [(method, args, sender)] in order and return their
        receipts. On anvil they are all sent before the first receipt is awaited (each is
        still mined in its own block, in order); a revert raises TxError after the batch."""
        if not self.fast:
            return [method(*args, sender=sender) for method, args, sender in txs]
        assert self.w3 is not None
        hashes = []
        for method, args, sender in txs:
            tx = {
                "from": str(sender.address),
                "to": str(method.contract.address),
                "data": bytes(method.encode_input(*args)),
                "gas": GAS,
            }
            hashes.append(self.w3.eth.send_transaction(tx))
        out: list[Any] = []
        for (method, args, sender), txn_hash in zip(txs, hashes, strict=True):
            receipt = self.w3.eth.wait_for_transaction_receipt(
                txn_hash, timeout=120, poll_latency=0.005
            )
            if receipt["status"] != 1:
                self._raise(method, args, sender, receipt)
            out.append(
                Receipt(
                    txn_hash="0x" + bytes(txn_hash).hex(),
                    gas_used=int(receipt["gasUsed"]),
                    block_number=int(receipt["blockNumber"]),
                    logs=list(receipt["logs"]),
                )
            )
        return out

    def submit(self, txs: list[tuple[Any, tuple[Any, ...], Any]]) -> list[Any]:
        """Put transactions [(method, args, sender)] in the node's pool without waiting: with
        anvil's automine off they are mined by the next `evm_mine` (anvil only)."""
        assert self.w3 is not None, "submit needs anvil's unlocked dev accounts"
        return [
            self.w3.eth.send_transaction(
                {
                    "from": str(sender.address),
                    "to": str(method.contract.address),
                    "data": bytes(method.encode_input(*args)),
                    "gas": GAS,
                }
            )
            for method, args, sender in txs
        ]

    def collect(self, txs: list[tuple[Any, tuple[Any, ...], Any]], hashes: list[Any]) -> list[Any]:
        """The receipts of submitted transactions once mined; a revert raises TxError."""
        assert self.w3 is not None
        out = []
        for (method, args, sender), txn_hash in zip(txs, hashes, strict=True):
            receipt = self.w3.eth.get_transaction_receipt(txn_hash)
            if receipt["status"] != 1:
                self._raise(method, args, sender, receipt)
            out.append(
                Receipt(
                    txn_hash="0x" + bytes(txn_hash).hex(),
                    gas_used=int(receipt["gasUsed"]),
                    block_number=int(receipt["blockNumber"]),
                    logs=list(receipt["logs"]),
                )
            )
        return out

    def timestamp(self) -> int:
        """The latest block's timestamp."""
        if self.w3 is not None:
            return int(self.w3.eth.get_block("latest")["timestamp"])
        from ape import chain

        return int(chain.blocks.head.timestamp)

    @staticmethod
    def _raise(method: Any, args: tuple[Any, ...], sender: Any, receipt: Any) -> None:
        name = getattr(method, "abis", [None])[0]
        label = getattr(name, "name", "transaction")
        try:
            method.call(*args, sender=sender)
        except Exception as exc:
            raise TxError(f"{label} reverted: {exc}") from None
        raise TxError(f"{label} reverted in block {int(receipt['blockNumber'])}")
