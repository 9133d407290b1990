"""Unit tests of the local-only mocks in contracts/mocks/.

Feed tests are named test_oracle_mock_* and test_sequencer_mock_* (selected by `-k oracle` and
`-k sequencer`); token tests test_mock_erc20_*.
"""

from __future__ import annotations

from typing import Any

import boa
import pytest

from tests.conftest import deployer, events

ZERO = "0x" + "00" * 20
MAX_UINT = 2**256 - 1


# ----------------------------------------------------------------------------------------------
# MockAggregatorV3
# ----------------------------------------------------------------------------------------------


def fresh_deploy(path: str, *args: Any) -> Any:
    """Deploy from a new address: titanoboa keeps contracts by address across anchor rollbacks,
    so reusing a rolled-back address can make it decode reverts with another contract's layout."""
    with boa.env.prank(boa.env.generate_address()):
        return deployer(path).deploy(*args)


@pytest.fixture
def price_feed() -> Any:
    return fresh_deploy("contracts/mocks/MockAggregatorV3.vy", 8, "ETH / USD", 2000 * 10**8)


def test_oracle_mock_feed_metadata(price_feed: Any) -> None:
    assert price_feed.decimals() == 8
    assert price_feed.description() == "ETH / USD"
    assert price_feed.version() == 4
    now = boa.env.timestamp
    assert price_feed.latestRoundData() == (1, 2000 * 10**8, now, now, 1)


def test_oracle_mock_feed_set_answer_opens_round(price_feed: Any) -> None:
    boa.env.time_travel(seconds=30)
    price_feed.set_answer(-7)
    now = boa.env.timestamp
    assert events(price_feed) == [
        ("AnswerUpdated", {"current": -7, "roundId": 2, "updatedAt": now})
    ]
    assert price_feed.latestRoundData() == (2, -7, now, now, 2)
    # History: round 1 is still readable.
    assert price_feed.getRoundData(1) == (1, 2000 * 10**8, now - 30, now - 30, 1)
    assert price_feed.getRoundData(2) == (2, -7, now, now, 2)


def test_oracle_mock_feed_set_round_data(price_feed: Any) -> None:
    big = 2**80 - 1
    price_feed.set_round_data(big, 2**255 - 1, 2**48 - 1, 5, big - 1)
    assert price_feed.latestRoundData() == (big, 2**255 - 1, 2**48 - 1, 5, big - 1)
    assert price_feed.getRoundData(big) == (big, 2**255 - 1, 2**48 - 1, 5, big - 1)
    # set_answer continues from the latest round id.
    price_feed.set_round_data(9, 1, 1, 1, 9)
    price_feed.set_answer(3)
    assert price_feed.latestRoundData()[0] == 10


def test_oracle_mock_feed_reverts(price_feed: Any) -> None:
    with boa.reverts("mock: no data present"):
        price_feed.getRoundData(2)
    with boa.reverts("mock: timestamp too large"):
        price_feed.set_round_data(2, 1, 2**48, 1, 2)
    with boa.reverts("mock: timestamp too large"):
        price_feed.set_round_data(2, 1, 1, 2**48, 2)


# ----------------------------------------------------------------------------------------------
# MockSequencerFeed
# ----------------------------------------------------------------------------------------------


def test_sequencer_mock_status_rounds() -> None:
    feed = deployer("contracts/mocks/MockSequencerFeed.vy").deploy(False)
    t0 = boa.env.timestamp
    assert (feed.decimals(), feed.version()) == (0, 1)
    assert feed.description() == "L2 Sequencer Uptime Status Feed"
    assert feed.latestRoundData() == (1, 0, t0, t0, 1)
    boa.env.time_travel(seconds=10)
    feed.set_status(False)  # unchanged: only updatedAt moves
    assert events(feed) == [("StatusUpdated", {"status": 0, "roundId": 1, "startedAt": t0})]
    assert feed.latestRoundData() == (1, 0, t0, t0 + 10, 1)
    boa.env.time_travel(seconds=10)
    feed.set_status(True)  # a change: new round, startedAt = now
    assert feed.latestRoundData() == (2, 1, t0 + 20, t0 + 20, 2)
    assert feed.getRoundData(1) == (1, 0, t0, t0 + 10, 1)
    with boa.reverts("mock: no data present"):
        feed.getRoundData(3)


def test_sequencer_mock_set_round_data() -> None:
    feed = deployer("contracts/mocks/MockSequencerFeed.vy").deploy(True)
    assert feed.latestRoundData()[1] == 1
    feed.set_round_data(4, 2, 0, 0, 4)
    assert feed.latestRoundData() == (4, 2, 0, 0, 4)
    with boa.reverts("mock: timestamp too large"):
        feed.set_round_data(5, 0, 2**48, 0, 5)


# ----------------------------------------------------------------------------------------------
# MockERC20
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def token() -> Any:
    return fresh_deploy("contracts/mocks/MockERC20.vy", "USD Coin", "USDC", 6)


def test_mock_erc20_metadata(token: Any) -> None:
    assert (token.name(), token.symbol(), token.decimals()) == ("USD Coin", "USDC", 6)
    assert token.totalSupply() == 0


def test_mock_erc20_mint_is_open(token: Any) -> None:
    alice = boa.env.generate_address()
    with boa.env.prank(alice):
        token.mint(alice, 10**6)
    assert events(token) == [("Transfer", {"sender": ZERO, "receiver": alice, "value": 10**6})]
    assert token.balanceOf(alice) == 10**6
    assert token.totalSupply() == 10**6
    with boa.reverts("erc20: mint to zero address"):
        token.mint(ZERO, 1)
    with boa.reverts():  # total supply overflow
        token.mint(alice, MAX_UINT)


def test_mock_erc20_transfer(token: Any) -> None:
    alice, bob = boa.env.generate_address(), boa.env.generate_address()
    token.mint(alice, 100)
    with boa.env.prank(alice):
        assert token.transfer(bob, 40) is True
        assert events(token) == [("Transfer", {"sender": alice, "receiver": bob, "value": 40})]
        with boa.reverts("erc20: insufficient balance"):
            token.transfer(bob, 61)
        with boa.reverts("erc20: transfer to zero address"):
            token.transfer(ZERO, 1)
    assert (token.balanceOf(alice), token.balanceOf(bob), token.totalSupply()) == (60, 40, 100)


def test_mock_erc20_approve_and_transfer_from(token: Any) -> None:
    alice, bob, carol = (boa.env.generate_address() for _ in range(3))
    token.mint(alice, 100)
    with boa.env.prank(alice):
        assert token.approve(bob, 50) is True
        assert events(token) == [("Approval", {"owner": alice, "spender": bob, "value": 50})]
    with boa.env.prank(bob):
        assert token.transferFrom(alice, carol, 30) is True
        with boa.reverts("erc20: insufficient allowance"):
            token.transferFrom(alice, carol, 21)
    assert token.allowance(alice, bob) == 20
    assert (token.balanceOf(alice), token.balanceOf(carol)) == (70, 30)


def test_mock_erc20_infinite_allowance_is_not_spent(token: Any) -> None:
    alice, bob = boa.env.generate_address(), boa.env.generate_address()
    token.mint(alice, 100)
    with boa.env.prank(alice):
        token.approve(bob, MAX_UINT)
    with boa.env.prank(bob):
        token.transferFrom(alice, bob, 100)
        with boa.reverts("erc20: insufficient balance"):
            token.transferFrom(alice, bob, 1)
    assert token.allowance(alice, bob) == MAX_UINT


def test_mock_erc20_burn(token: Any) -> None:
    alice = boa.env.generate_address()
    token.mint(alice, 100)
    with boa.env.prank(alice):
        token.burn(30)
        assert events(token) == [("Transfer", {"sender": alice, "receiver": ZERO, "value": 30})]
        with boa.reverts("erc20: insufficient balance"):
            token.burn(71)
    assert (token.balanceOf(alice), token.totalSupply()) == (70, 70)
