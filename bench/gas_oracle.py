"""Gas of the oracle layer's hot reads: `OracleAggregator.price()` and `VolOracle.sigma()`, and
of settlement: `OracleAggregator.settlement_price()` over 3 sources and the engine's
`settle_expiry` that records it (once per expiry, so measured for the record).

`measure()` deploys the contracts with titanoboa and returns the execution gas of one call
(`bench.common.execution_gas`: the call's own frame including its sub-calls to the feeds, not
the 21,000 intrinsic gas or the caller's CALL), priced as the first call of a transaction with
cold accounts and slots, which is what the margin engine pays.

The feeds are `contracts/mocks/MockAggregatorV3.vy`, whose `latestRoundData` costs about 4,600
gas cold (two storage slots, like Chainlink's OCR aggregator which packs its transmission);
a production Chainlink proxy adds its own proxy hop.
"""

from __future__ import annotations

import boa

from bench.common import execution_gas
from bench.common import load as _load

ZERO = "0x" + "00" * 20
WAD = 10**18


def measure() -> dict[str, int]:
    """Gas of price() over 3 fresh sources (8, 18 and 6 decimals) and of sigma() on a skewed,
    fresh entry away from the money."""
    # A fresh environment: no state leaks in or out, and resetting the access sets is safe.
    with boa.swap_env(boa.Env()):
        feeds = [
            _load("contracts/mocks/MockAggregatorV3.vy", d, "ETH / USD", 3000 * 10**d + i)
            for i, d in enumerate((8, 18, 6))
        ]
        aggregator = _load(
            "contracts/oracle/OracleAggregator.vy",
            [f.address for f in feeds],
            [3600, 3600, 3600],
            3,
            ZERO,
            3600,
            WAD,
        )
        oracle_price_3 = execution_gas(aggregator, "price")

        vol = _load(
            "contracts/oracle/VolOracle.vy", WAD // 100, 5 * WAD, WAD // 10, 2 * WAD, 3600, WAD // 2
        )
        vol.add_feeder(boa.env.eoa)
        expiry = boa.env.timestamp + 30 * 86400
        vol.update(expiry, 6 * WAD // 10, -WAD // 5)
        vol_sigma = execution_gas(vol, "sigma", expiry, 2500 * WAD, 3000 * WAD)
    figures = {"oracle_price_3": oracle_price_3, "vol_sigma": vol_sigma}
    figures.update(measure_settlement())
    return figures


def measure_settlement() -> dict[str, int]:
    """settlement_price over the test protocol's 3 feeds (each with a round before and two
    after the expiry) and settle_expiry recording it, hints from keeper/settlement.py."""
    from tests import protocol as P  # noqa: N812

    with boa.swap_env(boa.Env()):
        p = P.deploy()
        expiry = P.expiry_in(8)
        p.vol.update(expiry, 6 * WAD // 10, 0)
        p.engine.list_series(expiry, 3000 * WAD, True)
        boa.env.time_travel(seconds=expiry - boa.env.timestamp + 60)
        p.set_spot(3010)
        boa.env.time_travel(seconds=600)
        p.set_spot(3020)
        hints = p.settlement_hints(expiry)
        return {
            "oracle_settlement_price_3": execution_gas(p.oracle, "settlement_price", expiry, hints),
            "settle_expiry": execution_gas(p.engine, "settle_expiry", expiry, hints),
        }


if __name__ == "__main__":
    for key, gas in measure().items():
        print(f"{key:>26} {gas:>8,}")
