"""Gas of the venues: one pool swap and a three-pool `Router.swap_split`, measured with titanoboa.

`measure()` returns {"swap_split_3": ..., "pool_swap": ..., "twap_feed_read": ...}: the
execution gas of one call
(EVM gas of the call frame and its sub-calls, before refunds, without the 21,000 intrinsic
transaction gas and calldata gas), read as `contract._computation.get_gas_used()` right after
the call.

The measured calls are steady-state, worst-case-per-block trades:
- titanoboa runs calls as messages inside one long py-evm "transaction": it keeps warm/cold
  access sets and the EIP-2200 "original" storage values across calls, which makes later calls
  look cheap. `bench.common.execution_gas` commits the pending changes first, which also
  clears the access sets, so the measured call is priced like the first call of a new
  transaction (cold accounts and slots, SSTOREs priced against the committed values);
- a warm-up trade runs first in an earlier block, so the router's allowances to the pools and
  the recipient's token_out balance already exist (no one-off zero-to-non-zero writes);
- the measured call is the first trade of a new block in every pool, so it pays for the TWAP
  accumulator update;
- twap_feed_read is PoolTwapFeed.latestRoundData (a 30-minute window, full ring buffer,
  updates every period), the cost one TWAP source adds to OracleAggregator.price().
Tokens are contracts/mocks/MockERC20.vy (a plain ERC20 that does not spend an infinite
allowance, like OpenZeppelin's and snekmate's).

Each measured call is priced as the first call of a new transaction with
`bench.common.execution_gas` (which commits pending state, so SSTOREs are priced against
committed values and every access starts cold).
"""

from __future__ import annotations

import boa

from bench.common import execution_gas
from bench.common import load as _load

WAD = 10**18


def measure() -> dict[str, int]:
    """Deploy two tokens, three pools and the router on a fresh titanoboa env; return gas."""
    with boa.swap_env(boa.Env()):
        lp = boa.env.generate_address("lp")
        trader = boa.env.generate_address("trader")
        boa.env.eoa = lp
        usd = _load("contracts/mocks/MockERC20.vy", "USD", "USD", 6)
        eth = _load("contracts/mocks/MockERC20.vy", "ETH", "ETH", 18)
        pools = []
        for i, fee in enumerate((5, 30, 100)):
            pool = _load(
                "contracts/venues/ConstantProductPool.vy",
                eth.address,
                usd.address,
                fee,
                f"LP {i}",
                f"LP{i}",
            )
            depth = (i + 1) * 100
            eth.mint(lp, depth * WAD)
            usd.mint(lp, depth * 3000 * 10**6)
            eth.approve(pool.address, 2**256 - 1)
            usd.approve(pool.address, 2**256 - 1)
            pool.add_liquidity(depth * WAD, depth * 3000 * 10**6, 0, lp)
            pools.append(pool)
        router = _load("contracts/venues/Router.vy")
        boa.env.eoa = trader
        usd.mint(trader, 10**6 * 10**6)
        usd.approve(router.address, 2**256 - 1)
        usd.approve(pools[0].address, 2**256 - 1)
        addrs = [p.address for p in pools]
        legs = [1_000 * 10**6, 2_000 * 10**6, 3_000 * 10**6]

        def _new_block() -> None:
            boa.env.time_travel(blocks=1)

        _new_block()
        router.swap_split(usd.address, eth.address, addrs, legs, 0, trader, 2**255)

        _new_block()
        split_gas = execution_gas(
            router, "swap_split", usd.address, eth.address, addrs, legs, 0, trader, 2**255
        )

        _new_block()
        swap_gas = execution_gas(pools[0], "swap", usd.address, 1_000 * 10**6, 0, trader)

        feed = _load("contracts/oracle/PoolTwapFeed.vy", pools[2].address, eth.address, 1800, "t")
        for _ in range(12):
            boa.env.time_travel(seconds=feed.period())
            feed.update()
        feed_gas = execution_gas(feed, "latestRoundData")
    return {
        "swap_split_3": int(split_gas),
        "pool_swap": int(swap_gas),
        "twap_feed_read": int(feed_gas),
    }


if __name__ == "__main__":
    print(measure())
