"""Gas of the oracle layer's hot reads: `OracleAggregator.price()` and `VolOracle.sigma()`.

`measure()` deploys the contracts with titanoboa and returns the execution gas of one call:
`contract._computation.get_gas_used()` after the call, i.e. the gas the call's own frame
spends (including its sub-calls to the feeds) but not the 21,000 intrinsic gas of a
transaction or the caller's CALL opcode. Titanoboa keeps EIP-2929 warm/cold access sets across
calls, so each measurement first resets them (`boa.env._reset_access_counters()`): the numbers
are for a first, cold read in a transaction, which is what the margin engine pays.

The feeds are `contracts/mocks/MockAggregatorV3.vy`, whose `latestRoundData` costs about 4,600
gas cold (two storage slots, like Chainlink's OCR aggregator which packs its transmission);
a production Chainlink proxy adds its own proxy hop.
"""

from __future__ import annotations

from pathlib import Path

import boa

ROOT = Path(__file__).resolve().parent.parent
ZERO = "0x" + "00" * 20
WAD = 10**18


def _load(path: str, *args: object):
    boa.interpret.set_search_paths([str(ROOT)])
    return boa.load(str(ROOT / path), *args)


def _cold_gas(contract, fn: str, *args: object) -> int:
    """Execution gas of `contract.fn(*args)` with fresh (cold) access sets."""
    boa.env._reset_access_counters()
    getattr(contract, fn)(*args)
    return int(contract._computation.get_gas_used())


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
            "contracts/OracleAggregator.vy",
            [f.address for f in feeds],
            [3600, 3600, 3600],
            3,
            ZERO,
            3600,
            WAD,
        )
        oracle_price_3 = _cold_gas(aggregator, "price")

        vol = _load(
            "contracts/VolOracle.vy", WAD // 100, 5 * WAD, WAD // 10, 2 * WAD, 3600, WAD // 2
        )
        vol.add_feeder(boa.env.eoa)
        expiry = boa.env.timestamp + 30 * 86400
        vol.update(expiry, 6 * WAD // 10, -WAD // 5)
        vol_sigma = _cold_gas(vol, "sigma", expiry, 2500 * WAD, 3000 * WAD)
    return {"oracle_price_3": oracle_price_3, "vol_sigma": vol_sigma}


if __name__ == "__main__":
    for key, gas in measure().items():
        print(f"{key:>16} {gas:>8,}")
