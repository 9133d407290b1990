"""PNG charts of the crash demo (matplotlib, headless): one overview with six panels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

CHART = "demo.png"


def write_charts(report: dict[str, Any], directory: Path) -> Path:
    """Price and vol path, health distribution, liquidations, hedged vs unhedged delta, the
    perp's mark premium and funding rate, its open interest and the funding it moved."""
    steps = report["step_log"]
    t = np.array([s["step"] for s in steps])
    fig, axes = plt.subplots(3, 2, figsize=(13, 12.5), constrained_layout=True)
    fig.suptitle(
        f"Kappa crash demo on {report['network']}: {report['accounts']} accounts, "
        f"{report['liquidations']} liquidations, {report['hedges']} hedges, "
        f"bad debt {report['bad_debt']:.0f} USD\n"
        f"over {report['chain_seconds'] / 3600:.1f} h of chain time borrowers paid "
        f"{report['interest']['paid_by_borrowers']:,.0f} USD of interest at "
        f"{report['interest']['max_utilization']:.0%} peak utilization; perp funding paid "
        f"{report['funding_paid']:,.2f} USD, received {report['funding_received']:,.2f} USD"
    )

    ax = axes[0, 0]
    ax.plot(t, [s["spot"] for s in steps], color="tab:blue", label="ETH/USD (oracle median)")
    ax.set_xlabel("block")
    ax.set_ylabel("USD")
    ax.set_title("Price and ATM vol")
    ax2 = ax.twinx()
    vols = np.array([s["atm_vol"] for s in steps])
    for j, days in enumerate(report["settings"]["tenors_days"]):
        ax2.plot(t, vols[:, j], "--", alpha=0.8, label=f"ATM vol {days}d")
    ax2.set_ylabel("vol")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right", fontsize=8)

    ax = axes[0, 1]
    healthy = np.array([s["healthy"] for s in steps])
    below = np.array([s["below_im"] for s in steps])
    liq = np.array([s["liquidatable"] for s in steps])
    ax.stackplot(
        t,
        healthy,
        below,
        liq,
        labels=["H_IM >= 0", "H_MM >= 0 > H_IM", "H_MM < 0 (liquidatable)"],
        colors=["tab:green", "tab:orange", "tab:red"],
        alpha=0.8,
    )
    ax.set_title("Health of every account (keeper.margin)")
    ax.set_xlabel("block")
    ax.set_ylabel("accounts")
    ax.legend(loc="lower left", fontsize=8)

    ax = axes[1, 0]
    bids = np.array([s["liquidations"] for s in steps])
    starts = np.array([s["auctions_started"] for s in steps])
    ax.bar(t - 0.2, starts, width=0.4, label="auctions started", color="tab:orange")
    ax.bar(t + 0.2, bids, width=0.4, label="bids filled", color="tab:red")
    ax.set_title("Liquidations")
    ax.set_xlabel("block")
    ax.set_ylabel("per block")
    ax3 = ax.twinx()
    ax3.plot(t, np.cumsum(bids), color="black", label="bids, cumulative")
    ax3.set_ylabel("cumulative")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax3.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)

    ax = axes[1, 1]
    gross = np.array([s["mm_gross"] for s in steps])
    before = np.array([s["mm_delta_before"] for s in steps]) / gross
    after = np.array([s["mm_delta_after"] for s in steps]) / gross
    unhedged = np.array([s["mm_delta_unhedged"] for s in steps]) / gross
    for j in range(gross.shape[1]):
        ax.plot(t, unhedged[:, j], color=f"C{j}", alpha=0.5, label=f"MM{j + 1} never rehedged")
        ax.plot(t, before[:, j], ":", color=f"C{j}", label=f"MM{j + 1} before hedging")
        ax.plot(t, after[:, j], color=f"C{j}", lw=2, label=f"MM{j + 1} end of block")
    band = report["settings"]["band"]
    ax.axhspan(-band, band, color="grey", alpha=0.15, label="hedge band")
    ax.set_title("Market makers' net delta / gross option size")
    ax.set_xlabel("block")
    ax.legend(loc="lower left", fontsize=7, ncol=2)

    ax = axes[2, 0]
    band = report["perp_band"]
    premium = np.array([s["perp_mark_premium"] for s in steps]) * 1e4
    ax.plot(t, premium, color="tab:purple", lw=2, label="mark / index - 1")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_title(f"Perp mark premium (band +/-{band * 1e4:.0f} bp) and funding rate")
    ax.set_xlabel("block")
    ax.set_ylabel("premium (bp)")
    ax4 = ax.twinx()
    rate = np.array([s["perp_funding_rate"] for s in steps]) * 1e4
    ax4.plot(t, rate, "--", color="tab:brown", label="funding rate (bp / hour)")
    ax4.set_ylabel("bp / hour (> 0: longs pay)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax4.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)

    ax = axes[2, 1]
    ax.plot(t, [s["perp_open_interest"] for s in steps], color="tab:blue", label="open interest")
    ax.plot(
        t,
        [s["perp_lp_inventory"] for s in steps],
        color="tab:orange",
        label="liquidity account's position",
    )
    mm_perp = np.array([s.get("mm_perp", [0.0, 0.0]) for s in steps])
    for j in range(mm_perp.shape[1]):
        ax.plot(t, mm_perp[:, j], ":", color=f"C{j + 2}", label=f"MM{j + 1}'s perp hedge")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_title(
        f"Perp positions (ETH): {report['perp_fills']} fills, "
        f"{report['perp_liquidation_moves']} liquidation moves, "
        f"{report['perp_settlements']} settlements"
    )
    ax.set_xlabel("block")
    ax.legend(loc="lower left", fontsize=8)

    path = directory / CHART
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
