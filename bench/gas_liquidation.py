"""Gas of the Liquidator on realistic 16-position accounts (issue #5 goals).

`measure()` deploys the protocol on a fresh titanoboa env (tests/protocol.py), lists 16 series
over four expiries, and builds two identical 16-position accounts (short most of the chain
against modest cash), then moves spot so both are below maintenance but solvent. Each call is
priced as the first call of a new transaction (bench.common.execution_gas):
- start_auction_witness: Liquidator.start_auction with the witness scenario (one scenario);
- start_auction_full: Liquidator.start_auction with the full check (the second account);
- bid_16: Liquidator.bid on a 16-position account by a bidder with cash only: the account's
  full MM check, the move of 16 positions, the cash legs and the bidder's IM check, which the
  health floor proves for this well-funded bidder without vols or the grid;
- bid_16_full: the same bid on the second account by a thinly funded bidder, whose floor
  fails, so its IM check runs the full grid too (the worst passing bid).
"""

from __future__ import annotations

import boa

from bench.common import execution_gas
from bench.gas_engine import list_chain

WAD = 10**18
NO_WITNESS = 2**256 - 1
CRASH_SPOT = 2_150.0
# Cash (USD) of the thinly funded bidder: enough for its initial margin after taking a tenth
# of the account, not enough for the health floor (every short at its bound).
TIGHT_BIDDER_USD = 3_000


def _victim(p, dealer, ids: list[int], name: str, nonce: int) -> str:
    from tests import protocol as P  # noqa: N812

    account = boa.env.generate_address(name)
    p.fund(account, usd=9_000)
    for i, sid in enumerate(ids):
        order = dealer.order(sid, i % 4 != 0, WAD, 60 * WAD, nonce=nonce + i)
        with boa.env.prank(account):
            p.engine.fill(P.as_tuple(order), dealer.sign(p, order), WAD, account)
    return account


def measure() -> dict[str, int]:
    from tests import protocol as P  # noqa: N812

    with boa.swap_env(boa.Env()):
        p = P.deploy()
        ids = list_chain(p)
        dealer = P.Maker.new("dealer")
        p.fund(dealer.address, usd=10_000_000, weth=100)
        first = _victim(p, dealer, ids, "victim-a", 0)
        second = _victim(p, dealer, ids, "victim-b", 100)
        bidder = boa.env.generate_address("bidder")
        p.fund(bidder, usd=1_000_000)
        tight_bidder = boa.env.generate_address("tight-bidder")
        p.fund(tight_bidder, usd=TIGHT_BIDDER_USD)
        p.set_spot(CRASH_SPOT)
        mtm, _, h_mm = p.engine.margin(first)
        assert mtm > 0 > h_mm, f"the bench account must be solvent and liquidatable: {mtm}, {h_mm}"
        witness = p.engine.health(first, False)[1]
        figures = {
            "start_auction_witness": execution_gas(p.liquidator, "start_auction", first, witness),
            "start_auction_full": execution_gas(p.liquidator, "start_auction", second, NO_WITNESS),
        }
        with boa.env.prank(bidder):
            figures["bid_16"] = execution_gas(p.liquidator, "bid", first, WAD // 10, 2**255 - 1)
        with boa.env.prank(tight_bidder):
            figures["bid_16_full"] = execution_gas(
                p.liquidator, "bid", second, WAD // 10, 2**255 - 1
            )
        # The figures mean what they say: the floor proved the first bidder's IM and could not
        # prove the thin one's.
        assert p.health_floor(bidder) >= 0 > p.health_floor(tight_bidder), "bidder floors"
        return figures


if __name__ == "__main__":
    for key, gas in measure().items():
        print(f"{key:<24}{gas:>12,}")
