"""`make demo`: Kappa's math on a local L2 node.

Until the crash-scenario demo lands (issue #9), the demo deploys PricingLens (the wad, normal
and Black-76 modules behind external views) to a local anvil node started by ape-foundry as
Base (`base:local:foundry`), prices a small option chain on chain, and prints each price and
Greek beside the float64 reference of keeper/greeks.py with the difference in units of the
forward. Run with `make demo`, or `ape run demo --network base:local:foundry`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ape import accounts, chain, networks, project

from keeper.greeks import black76

WAD = 10**18
# (forward, strike, days, vol, is_call): an ETH chain around 3,000 USD.
CHAIN = [
    (3000, 2500, 30, 0.75, False),
    (3000, 2800, 30, 0.65, True),
    (3000, 3000, 30, 0.60, True),
    (3000, 3200, 90, 0.62, True),
    (3000, 3600, 90, 0.70, True),
    (3000, 2000, 180, 0.80, False),
]
REPORT = Path("reports/demo.json")


def main() -> None:
    deployer = accounts.test_accounts[0]
    lens = deployer.deploy(project.PricingLens)
    provider = networks.provider
    print(
        f"network  {provider.network.ecosystem.name}:{provider.network.name}:{provider.name} "
        f"(chain id {chain.chain_id}), PricingLens at {lens.address}"
    )
    print(
        f"{'option':<22}{'on-chain price':>16}{'float64':>16}{'diff/F':>10}"
        f"{'delta':>10}{'gamma':>11}{'vega':>10}{'theta':>10}"
    )
    rows = []
    worst = 0.0
    for forward, strike, days, vol, is_call in CHAIN:
        args = (forward * WAD, strike * WAD, days * WAD // 365, int(vol * WAD), is_call)
        on_chain = lens.greeks(*args)
        ref = black76(forward, strike, days / 365, vol, is_call)
        got = {
            name: int(getattr(on_chain, name)) / WAD
            for name in ("price", "delta", "gamma", "vega", "theta")
        }
        diff = abs(got["price"] - float(ref.price)) / forward
        worst = max(worst, diff)
        label = f"{'C' if is_call else 'P'} K={strike} {days}d {vol:.0%}"
        print(
            f"{label:<22}{got['price']:>16.8f}{float(ref.price):>16.8f}{diff:>10.1e}"
            f"{got['delta']:>10.5f}{got['gamma']:>11.2e}{got['vega']:>10.3f}"
            f"{got['theta']:>10.1f}"
        )
        rows.append(
            {
                "option": label,
                "on_chain": got,
                "float64": {name: float(getattr(ref, name)) for name in got},
            }
        )
    atm = (3000 * WAD, 3000 * WAD, 30 * WAD // 365, 6 * WAD // 10, True)
    gas = lens.greeks.estimate_gas_cost(*atm, sender=deployer)
    print(f"max |on-chain - float64| / F = {worst:.1e}; greeks() eth_estimateGas = {gas:,}")
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(
        json.dumps(
            {
                "network": f"{provider.network.ecosystem.name}:"
                f"{provider.network.name}:{provider.name}",
                "chain_id": chain.chain_id,
                "options": rows,
                "max_price_diff_over_forward": worst,
                "greeks_gas_estimate": gas,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {REPORT}")
