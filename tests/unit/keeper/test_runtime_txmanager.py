"""keeper.runtime.txmanager: nonces, EIP-1559 caps, replacement, confirmations, spend cap."""

from __future__ import annotations

import pytest

from keeper.runtime.settings import KeeperSettings
from keeper.runtime.txmanager import (
    ETHER,
    GWEI,
    PendingTx,
    Receipt,
    TxManager,
    TxPolicy,
    bumped_fees,
    initial_fees,
)

POLICY = TxPolicy(
    max_fee_wei=10 * GWEI,
    max_priority_fee_wei=GWEI,
    gas_limit=1_000_000,
    replace_after_blocks=3,
    bump_percent=12.5,
    hourly_spend_cap_wei=ETHER // 20,  # 0.05 ETH = 5 worst-case transactions at the cap
    confirmations=2,
    max_pending=4,
)
KEY = ("bid", "0xabc")


def tx(m: TxManager, key: tuple[str, str], block: int, max_fee: int = 4 * GWEI) -> PendingTx:
    t = PendingTx(key, m.take_nonce(), "0xto", b"", POLICY.gas_limit, max_fee, GWEI, block)
    m.record_sent(t, f"0x{t.nonce:064x}")
    return t


def test_fees_are_capped():
    assert initial_fees(GWEI, 2 * GWEI, POLICY) == (3 * GWEI, GWEI)  # tip capped at 1 gwei
    assert initial_fees(6 * GWEI, 0, POLICY) == (10 * GWEI, 0)  # 2 * base capped at 10 gwei
    assert initial_fees(11 * GWEI, 0, POLICY) is None  # base fee above the cap: wait
    assert bumped_fees(4 * GWEI, GWEI, POLICY) == (4_500_000_000, 1_125_000_000)
    assert bumped_fees(0, 0, POLICY) == (1, 1)  # a zero fee still rises (local chains)
    assert bumped_fees(9 * GWEI, GWEI, POLICY) is None  # 10.125 gwei > cap: cannot replace
    # After a base-fee spike the bump follows the base fee (bumped base + tip, within the cap).
    assert bumped_fees(GWEI, GWEI, POLICY, base_fee=4 * GWEI) == (5_625_000_000, 1_125_000_000)
    assert bumped_fees(GWEI, GWEI, POLICY, base_fee=9 * GWEI) == (10 * GWEI, 1_125_000_000)
    assert bumped_fees(GWEI, GWEI, POLICY, base_fee=11 * GWEI) is None  # base above the cap
    s = KeeperSettings.model_validate({"dry_run": True, "confirmations": 3})
    p = TxPolicy.from_settings(s)
    assert (p.max_fee_wei, p.max_priority_fee_wei, p.hourly_spend_cap_wei) == (
        5 * GWEI,
        GWEI // 10,
        ETHER // 20,
    )
    assert (p.dry_run, p.confirmations, p.gas_limit) == (True, 3, 3_000_000)


def test_nonces_are_local_and_reconciled():
    m = TxManager(POLICY)
    assert m.admit(KEY, GWEI, now=0) == "nonce unknown (not reconciled with the node yet)"
    assert m.reconcile(node_latest=5, node_pending=5, head=100, now=0, receipts={}) == []
    assert m.next_nonce == 5
    a = tx(m, ("bid", "0x1"), 100)
    b = tx(m, ("bid", "0x2"), 100)
    assert (a.nonce, b.nonce, m.next_nonce) == (5, 6, 7)
    assert m.admit(("bid", "0x1"), GWEI, now=0) == "already in flight"
    # a is mined at 101; at head 102 it has 1 block on top: not final (confirmations = 2).
    receipts = {a.hashes[0]: Receipt(a.hashes[0], 101, 1, 50_000, 2 * GWEI)}
    assert m.reconcile(6, 7, head=102, now=10, receipts=receipts) == []
    assert a.mined_block == 101 and m.next_nonce == 7
    assert [t.nonce for t in m.reconcile(6, 7, head=103, now=10, receipts=receipts)] == [5]
    assert m.spent_last_hour(10) == 50_000 * 2 * GWEI
    # The node saw nonce 6 used by a transaction none of ours: b is dropped; counts win.
    done = m.reconcile(9, 9, head=104, now=11, receipts={})
    assert [t.nonce for t in done] == [6] and done[0].status is None
    assert m.pending == {} and m.next_nonce == 9
    # Someone else used the key while ours was in flight: our next nonce moves past theirs.
    c = tx(m, ("end_auction", "0x3"), 105)
    assert c.nonce == 9
    m.reconcile(9, 12, head=105, now=12, receipts={})
    assert m.next_nonce == 10
    # Then nonce 9 is used by someone else too: c is dropped, and with nothing in flight the
    # node's pending count (its pool included) is the next nonce.
    assert m.reconcile(11, 12, head=106, now=12, receipts={}) == [c]
    assert m.next_nonce == 12


def test_replacement_after_n_blocks_at_the_same_nonce():
    m = TxManager(POLICY)
    m.reconcile(0, 0, head=10, now=0, receipts={})
    t = tx(m, KEY, 10)
    assert m.due_for_replacement(12) == []
    assert m.due_for_replacement(13) == [t]
    fees = bumped_fees(t.max_fee, t.tip, POLICY)
    assert fees == (4_500_000_000, 1_125_000_000)
    m.record_replaced(t, *fees, txn_hash="0xnew", block=13)
    assert (t.nonce, t.replacements, t.hashes, t.sent_block) == (
        0,
        1,
        ["0x" + "0" * 64, "0xnew"],
        13,
    )
    assert m.due_for_replacement(15) == [] and m.due_for_replacement(16) == [t]
    # The replacement is what got mined.
    r = {"0xnew": Receipt("0xnew", 16, 0, 70_000, 3 * GWEI)}
    done = m.reconcile(1, 1, head=18, now=5, receipts=r)
    assert done == [t] and t.status == 0 and t.gas_used == 70_000
    assert m.next_nonce == 1


def test_spend_cap_counts_in_flight_worst_case_and_the_trailing_hour():
    m = TxManager(POLICY)
    m.reconcile(0, 0, head=1, now=0, receipts={})
    # Worst case per transaction at 10 gwei: 1e6 * 1e10 = 0.01 ETH; the cap is 0.05 ETH.
    for i in range(4):
        assert m.admit(("bid", f"0x{i}"), 10 * GWEI, now=0) is None
        tx(m, ("bid", f"0x{i}"), 1, max_fee=10 * GWEI)
    assert m.admit(("bid", "0x9"), GWEI, now=0) == "4 transactions in flight (max_pending)"
    m = TxManager(POLICY)
    m.reconcile(0, 0, head=1, now=0, receipts={})
    m.spent.append((100, 45 * 10**15))  # 0.045 ETH paid at t = 100
    reason = m.admit(KEY, 10 * GWEI, now=200)
    assert reason == "hourly spend cap: 0.055 ETH would exceed 0.05 ETH"
    assert m.admit(KEY, 5 * GWEI, now=200) is None  # 0.045 + 0.005
    assert m.admit(KEY, 10 * GWEI, now=100 + 3600) is None  # the old spend left the hour
    assert m.spent_last_hour(3700) == 0


def test_take_nonce_needs_reconciliation():
    with pytest.raises(RuntimeError, match="reconcile"):
        TxManager(POLICY).take_nonce()


def test_dry_run_applies_the_limits_but_never_takes_a_nonce():
    m = TxManager(TxPolicy(**{**POLICY.__dict__, "dry_run": True}))
    assert m.decide(KEY, 10 * GWEI, now=0) == ("dry_run", None)
    assert m.next_nonce is None and m.pending == {}
    m.spent.append((0, ETHER))  # over the cap already
    assert m.decide(KEY, GWEI, now=10) == (
        "refuse",
        "hourly spend cap: 1.001 ETH would exceed 0.05 ETH",
    )
    live = TxManager(POLICY)
    assert live.decide(KEY, GWEI, now=0) == (
        "refuse",
        "nonce unknown (not reconciled with the node yet)",
    )
    live.reconcile(3, 3, head=1, now=0, receipts={})
    assert live.decide(KEY, GWEI, now=0) == ("send", None)


def test_replacement_respects_both_caps():
    m = TxManager(POLICY)
    m.reconcile(0, 0, head=1, now=0, receipts={})
    t = tx(m, KEY, 1, max_fee=4 * GWEI)
    # 4 gwei -> 4.5 gwei: worst case 0.0045 ETH replaces 0.004 ETH, within 0.05 ETH.
    assert m.replacement(t, now=0) == ((4_500_000_000, 1_125_000_000), None)
    # 0.04551 ETH already paid this hour: the bumped worst case (+0.0045) passes the cap, while
    # the unbumped one (+0.004, counted as in flight) did not.
    m.spent.append((0, 4551 * 10**13))
    fees, why = m.replacement(t, now=10)
    assert fees is None and why == "hourly spend cap: 0.05001 ETH would exceed 0.05 ETH"
    t.max_fee = 9 * GWEI
    m.spent.clear()
    assert m.replacement(t, now=10) == (None, "a bump would exceed max_fee")


def test_a_reorged_out_transaction_is_released_for_re_planning():
    m = TxManager(POLICY)
    m.reconcile(3, 3, head=10, now=0, receipts={})
    a = tx(m, ("start_auction", "0x1"), 10)
    b = tx(m, ("start_auction", "0x2"), 10)
    mined = {h: Receipt(h, 11, 1, 60_000, GWEI) for h in a.hashes + b.hashes}
    assert m.reconcile(5, 5, head=11, now=1, receipts=mined) == []
    assert a.was_mined and b.was_mined
    # A reorg drops block 11; the node forgot nonce 3 and 4 (its counts are back at 3): both
    # leave the manager, their keys are free for the planner again and the nonce is 3 again.
    assert m.reconcile(3, 3, head=11, now=2, receipts={}) == []
    assert m.reorged == [a, b] and m.pending == {} and m.in_flight() == set()
    assert m.next_nonce == 3
    # A reorged-out transaction the node still holds in its pool stays in flight as sent.
    c = tx(m, ("end_auction", "0x3"), 12)
    m.reconcile(3, 4, head=13, now=3, receipts={c.hashes[0]: Receipt(c.hashes[0], 13, 1, 1, 1)})
    m.reconcile(3, 4, head=13, now=4, receipts={})
    assert m.reorged == [] and m.pending == {3: c} and c.mined_block is None


def test_pool_transactions_from_before_a_restart_hold_new_sends():
    m = TxManager(POLICY)
    # A new process: the node's pool holds 2 transactions of this signer it never sent.
    m.reconcile(node_latest=7, node_pending=9, head=50, now=0, receipts={})
    assert m.next_nonce == 9
    why = "2 earlier transactions of this signer are still pending (sent before a restart)"
    assert m.admit(KEY, GWEI, now=0) == why
    m.reconcile(7, 9, head=52, now=0, receipts={})
    assert m.admit(KEY, GWEI, now=0) == why
    # Mined: their effects are in the events, new sends go ahead.
    m.reconcile(9, 9, head=53, now=0, receipts={})
    assert m.admit(KEY, GWEI, now=0) is None
    # Still pending after replace_after_blocks blocks (3): no longer a reason to wait.
    m.reconcile(9, 10, head=60, now=0, receipts={})
    assert m.admit(KEY, GWEI, now=0) is not None
    m.reconcile(9, 10, head=63, now=0, receipts={})
    assert m.admit(KEY, GWEI, now=0) is None and m.next_nonce == 10
