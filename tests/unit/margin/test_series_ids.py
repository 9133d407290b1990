"""keeper/series.py: series ids and packed positions as MarginEngine encodes them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keeper.series import pack_position, series_id, series_terms, unpack_position

WAD = 10**18


@given(
    hours=st.integers(1, 2**27 - 1),
    strike=st.integers(1, 2**120 - 1),
    is_call=st.booleans(),
    size=st.integers(-(2**96), 2**96),
)
def test_ids_and_positions_round_trip(hours, strike, is_call, size):
    sid = series_id(hours * 3600, strike, is_call)
    assert sid < 2**148
    assert series_terms(sid) == (hours * 3600, strike, is_call)
    word = pack_position(sid, size)
    assert word == sid << 108 | (size & (2**108 - 1))
    assert word < 2**256
    assert unpack_position(word) == (sid, size)


def test_worked_id():
    # 2027-01-15 08:00 UTC, a 3,200 USD call.
    expiry = 1_800_000_000 - 1_800_000_000 % 86_400 + 8 * 3600
    assert series_id(expiry, 3200 * WAD, True) == (expiry // 3600) * 2**121 + 2**120 + 3200 * WAD
    assert unpack_position(series_id(expiry, 3200 * WAD, False) << 108 | (2**108 - 1)) == (
        series_id(expiry, 3200 * WAD, False),
        -1,
    )


@pytest.mark.parametrize(
    ("expiry", "strike", "message"),
    [
        (3601, WAD, "hourly grid"),
        (0, WAD, "hourly grid"),
        (3600, 0, "outside"),
        (3600, 2**120, "outside"),
    ],
)
def test_terms_the_engine_cannot_list_are_rejected(expiry, strike, message):
    with pytest.raises(ValueError, match=message):
        series_id(expiry, strike, True)


def test_sizes_beyond_the_engine_bound_are_rejected():
    sid = series_id(3600, WAD, True)
    assert unpack_position(pack_position(sid, -(2**96))) == (sid, -(2**96))
    for size in (2**96 + 1, -(2**96) - 1):
        with pytest.raises(ValueError, match="beyond the engine's bound"):
            pack_position(sid, size)
