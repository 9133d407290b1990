"""Liquidation decisions for a keeper (pure, no chain I/O, vectorised across accounts).

Inputs come from keeper.margin.evaluate (H_MM and its witness per account) and the
Liquidator's state (which accounts have an open auction). Per account the keeper

- starts an auction when H_MM < 0 and none is open, passing the witness scenario so the
  contract checks one scenario instead of the whole grid (`start`, `witnesses`);
- bids on open auctions that are still under water (`bid`): the bidder asks for the whole
  account and the contract caps the fraction at what restores H_MM to its buffer;
- ends open auctions whose account is healthy again (`end`): back above initial margin when
  H_IM is given (closing at H_MM >= 0 only to reopen a block later costs two transactions
  and restarts the discount clock), else at H_MM >= 0 (what the contract requires).

`price_limit` is the most signed cash the bidder accepts to pay in total for a fraction of an
account (the Liquidator's "outlay"): fraction * MtM * (1 - discount) to the account plus
fund_share * fraction * MtM * discount to the insurance fund, plus a tolerance for the MtM
moving between the read and the transaction; for an insolvent account (MtM <= 0) the outlay is
non-positive (the bidder is paid) and the limit is 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

__all__ = ["NO_WITNESS", "LiquidationPlan", "plan_liquidations", "price_limit"]

# The Liquidator's witness value meaning "check every scenario".
NO_WITNESS = 2**256 - 1


class LiquidationPlan(NamedTuple):
    start: IntArray  # account indices to start an auction for
    witnesses: IntArray  # the witness scenario of each, aligned with `start`
    bid: IntArray  # account indices with an open auction to bid on (includes new ones)
    end: IntArray  # open auctions of accounts back at H_MM >= 0


def plan_liquidations(
    health_mm: npt.ArrayLike,
    witness_mm: npt.ArrayLike,
    auction_open: npt.ArrayLike,
    protected: npt.ArrayLike | None = None,
    margin: float = 0.0,
    health_im: npt.ArrayLike | None = None,
) -> LiquidationPlan:
    """What to do for each account this block.

    Args:
        health_mm: H_MM per account (USD).
        witness_mm: the minimising scenario index per account (keeper.margin's witness).
        auction_open: whether the Liquidator has an open auction for the account.
        protected: accounts never acted on (e.g. the bidder's own account), optional.
        margin: start only below -margin (USD >= 0), to leave room for the model's float64
            agreement band with the contract (1e-6 USD + 1e-9 relative).
        health_im: H_IM per account, optional: end auctions only once it is >= 0.

    Returns:
        LiquidationPlan with ascending indices.
    """
    h = np.asarray(health_mm, dtype=np.float64)
    w = np.asarray(witness_mm, dtype=np.int64)
    is_open = np.asarray(auction_open, dtype=bool)
    if not (h.shape == w.shape == is_open.shape) or h.ndim != 1:
        raise ValueError("health_mm, witness_mm and auction_open must be 1-D and aligned")
    if margin < 0 or not np.isfinite(margin):
        raise ValueError("margin must be finite and >= 0")
    if not np.all(np.isfinite(h)):
        raise ValueError("health_mm must be finite")
    allowed = np.ones_like(is_open)
    if protected is not None:
        p = np.asarray(protected, dtype=bool)
        if p.shape != h.shape:
            raise ValueError("protected must align with health_mm")
        allowed = ~p
    under = h < -margin
    start = np.flatnonzero(under & ~is_open & allowed)
    bid = np.flatnonzero(under & allowed)
    healthy = h >= 0
    if health_im is not None:
        him = np.asarray(health_im, dtype=np.float64)
        if him.shape != h.shape:
            raise ValueError("health_im must align with health_mm")
        healthy &= him >= 0
    end = np.flatnonzero(is_open & healthy & allowed)
    return LiquidationPlan(start, w[start], bid, end)


def price_limit(
    mtm: npt.ArrayLike,
    fraction: npt.ArrayLike,
    discount: npt.ArrayLike,
    fund_share: float = 0.0,
    tolerance: float = 0.01,
) -> FloatArray:
    """The most cash (USD, signed) a bidder pays in total for `fraction` of accounts worth `mtm`.

    fraction * mtm * (1 - discount + fund_share * discount) * (1 + tolerance) for a positive
    MtM, 0 otherwise (an insolvent account's outlay is <= 0: the bidder is paid, never pays).
    """
    m = np.asarray(mtm, dtype=np.float64)
    q = np.asarray(fraction, dtype=np.float64)
    d = np.asarray(discount, dtype=np.float64)
    if np.any((q < 0) | (q > 1)) or np.any((d < 0) | (d > 1)) or not 0 <= fund_share <= 1:
        raise ValueError("fraction, discount and fund_share must be fractions in [0, 1]")
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    outlay = q * m * (1.0 - d + fund_share * d)
    return np.where(m > 0, outlay * (1.0 + tolerance), 0.0)
