"""The revm harness (tests/harness/revm.py) runs the project's contracts like titanoboa does."""

from __future__ import annotations

import pytest

from tests.conftest import load
from tests.harness import Chain, Reverted
from tests.harness.revm import Halted, decode_revert

WAD = 10**18
PRICE_CASES = [
    (3000 * WAD, 3100 * WAD, WAD // 12, 8 * WAD // 10, True),
    (3000 * WAD, 2500 * WAD, WAD // 4, WAD // 2, False),
    (1500 * WAD, 1500 * WAD, WAD // 365, WAD, True),
]


@pytest.fixture(scope="module")
def chain() -> Chain:
    return Chain()


@pytest.fixture(scope="module")
def lens(chain):
    return chain.deploy("tests/contracts/PricingLens.vy")


@pytest.fixture(scope="module")
def boa_lens():
    return load("tests/contracts/PricingLens.vy")


@pytest.fixture
def token(chain):
    return chain.deploy("contracts/mocks/MockERC20.vy", "USD Coin", "USDC", 6)


def test_math_matches_titanoboa(lens, boa_lens):
    for x in (-10 * WAD, -WAD, 0, WAD // 3, WAD, 5 * WAD):
        assert lens.exp_wad(x) == boa_lens.exp_wad(x)
        assert lens.cdf(x) == boa_lens.cdf(x)
    for x in (1, WAD // 7, WAD, 10**30):
        assert lens.ln_wad(x) == boa_lens.ln_wad(x)
        assert lens.sqrt_wad(x) == boa_lens.sqrt_wad(x)
    for args in PRICE_CASES:
        assert lens.price(*args) == boa_lens.price(*args)


def test_struct_return_is_a_tuple(lens, boa_lens):
    for args in PRICE_CASES:
        greeks = lens.greeks(*args)
        assert isinstance(greeks, tuple)
        assert greeks == tuple(boa_lens.greeks(*args))


def test_revert_reason_is_decoded(chain, lens):
    with pytest.raises(Reverted) as info:
        lens.ln_wad(0)
    assert info.value.reason == "wad: ln of non-positive"
    assert info.value.gas_used > 0
    with chain.reverts("wad: ln of non-positive"):
        lens.ln_wad(-WAD)
    with pytest.raises(AssertionError), chain.reverts("another reason"):
        lens.ln_wad(0)
    with pytest.raises(AssertionError), chain.reverts():
        lens.ln_wad(WAD)
    assert decode_revert(b"") is None


def test_static_call_cannot_write(chain, token):
    # A state-changing function forced through a static call halts instead of writing.
    fn = token.mint
    selector, *_ = fn.overloads[2]
    data = fn.calldata(chain.alice, 1)
    assert data[:4] == selector
    with pytest.raises(Halted):
        chain.call(token.address, data, static=True)
    assert token.balanceOf(chain.alice) == 0


def test_events_are_decoded(chain, token):
    token.mint(chain.alice, 100)
    [minted] = token.get_logs()
    assert minted.name == "Transfer"
    assert minted.args == {"sender": "0x" + "00" * 20, "receiver": chain.alice, "value": 100}
    assert minted.address == token.address
    assert token.transfer(chain.bob, 40, sender=chain.alice) is True
    [moved] = token.get_logs()
    assert (moved.sender, moved.receiver, moved.value) == (chain.alice, chain.bob, 40)
    token.approve(chain.carol, 7, sender=chain.bob)
    assert [(e.name, e.args) for e in token.get_logs()] == [
        ("Approval", {"owner": chain.bob, "spender": chain.carol, "value": 7})
    ]
    assert token.balanceOf(chain.alice) == 60
    assert token.get_logs() == []  # a view emits nothing


def test_erc20_revert(chain, token):
    with chain.reverts("erc20: insufficient balance"):
        token.transfer(chain.bob, 1, sender=chain.alice)


def test_snapshot_restores_state(chain, token):
    token.mint(chain.alice, 100)
    snap = chain.snapshot()
    token.transfer(chain.bob, 30, sender=chain.alice)
    later = chain.deploy("contracts/mocks/MockERC20.vy", "X", "X", 18)
    assert token.balanceOf(chain.bob) == 30
    chain.revert(snap)
    assert (token.balanceOf(chain.alice), token.balanceOf(chain.bob)) == (100, 0)
    assert chain.evm.get_code(later.address) in (None, b"")
    with chain.anchor():
        token.burn(100, sender=chain.alice)
        assert token.totalSupply() == 0
    assert token.totalSupply() == 100
    # A snapshot can be returned to again and again without the journal depth growing.
    depth = chain.evm.journal_depth
    for _ in range(5):
        token.mint(chain.bob, 1)
        chain.revert(snap)
        assert token.balanceOf(chain.bob) == 0
        assert chain.evm.journal_depth == depth
    # Nested snapshots.
    outer = chain.snapshot()
    token.mint(chain.bob, 1)
    inner = chain.snapshot()
    token.mint(chain.bob, 2)
    chain.revert(inner)
    assert token.balanceOf(chain.bob) == 1
    chain.revert(outer, reuse=False)
    assert token.balanceOf(chain.bob) == 0
    assert chain.evm.journal_depth == depth
    with pytest.raises(ValueError):
        chain.revert(inner)
    chain.revert(snap, reuse=False)


def test_time_travel_moves_block_timestamp(chain):
    feed = chain.deploy("contracts/mocks/MockAggregatorV3.vy", 8, "ETH / USD", 3000 * 10**8)
    start = chain.timestamp
    with chain.anchor():
        chain.time_travel(seconds=3600)
        assert (chain.timestamp, chain.block_number) == (start + 3600, 1 + 300)
        feed.set_answer(3100 * 10**8)
        round_id, answer, started_at, updated_at, answered_in = feed.latestRoundData()
        assert (answer, started_at, updated_at) == (3100 * 10**8, start + 3600, start + 3600)
        assert answered_in == round_id
    assert chain.timestamp == start  # the anchor also restores the block time
    feed.set_answer(2900 * 10**8)
    assert feed.latestRoundData()[3] == start


def test_gas_used_and_deploy_args(chain, lens):
    lens.price(*PRICE_CASES[0])
    assert 21_000 < chain.gas_used < 200_000
    with pytest.raises(TypeError):
        lens.price(1, 2)
    with pytest.raises(AttributeError):
        lens.no_such_function()


ENCODER_CASES = [
    (("uint256", "int256", "bool", "address"), (2**256 - 1, -(2**255), True, "0x" + "ab" * 20)),
    (("uint8", "int8", "bytes32", "bytes4"), (255, -128, b"\x01" * 32, b"\xde\xad")),
    (("string", "bytes", "uint256[]"), ("ETH / USD", b"\x00" * 33, [1, 2, 3])),
    (
        ("address[3]", "(int256,string)[]", "(bool,uint256[2])"),
        (["0x" + "01" * 20] * 3, [(1, "a"), (-2, "b" * 40)], (False, [7, 8])),
    ),
    (
        ("(int256,int256,(int256,uint256,bool,int256,int256,int256)[])", "(int256,uint256)"),
        ((5, -6, [(1, 2, True, -3, 4, 0)] * 16), (-1, 2)),
    ),
    ((), ()),
]


@pytest.mark.parametrize(("types", "values"), ENCODER_CASES)
def test_fast_encoder_matches_eth_abi(types, values):
    from tests.harness.revm import _encoder, _eth_abi_encoder

    assert _encoder(types)(values) == _eth_abi_encoder(types)(values)


@pytest.mark.parametrize(
    ("types", "values"),
    [
        (("uint8",), (256,)),
        (("uint256",), (-1,)),
        (("int8",), (128,)),
        (("bool",), (1,)),
        (("address",), ("0x12",)),
        (("uint256[2]",), ([1],)),
        (("uint256", "bool"), (1,)),
    ],
)
def test_fast_encoder_rejects_bad_values(types, values):
    from tests.harness.revm import _encoder

    with pytest.raises((ValueError, TypeError)):
        _encoder(types)(values)
