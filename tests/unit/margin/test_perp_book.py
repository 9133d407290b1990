"""contracts/margin/PerpBook.vy: the perp's market and positions in storage, written only by
its engine, listed and re-parametrized only by the engine's risk admin, with events a mirror
replays (keeper/perp.py `PerpBook`, the same integers).

Every test name contains "perp" (`pytest -k perp`). The engine is
tests/contracts/PerpEngineStub.vy (its risk admin and an exact oracle price), except in the
test that wires the book to the real MarginEngine and OracleAggregator. Fixed values are
computed by hand in the comments; the golden sequence (tests/unit/margin/golden_perp.py) is
replayed through the book's storage to the wei; a Hypothesis property checks funding's zero sum
with liquidation moves, the open interest, and that the events rebuild the book exactly.
"""

from __future__ import annotations

import json
from typing import Any

import boa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper import perp as kp
from tests.conftest import events, load, scaled
from tests.unit.margin import golden_perp

WAD = 10**18
S = 2_000 * WAD
BAND = 5 * 10**16  # 5%
HALF_LIFE = 900
CONVERGENCE = 8
MAX_RATE = 10**15  # 0.1% per hour
T0 = 1_800_000_000
BOOK = "contracts/margin/PerpBook.vy"


@pytest.fixture(scope="module")
def engine():
    return load("tests/contracts/PerpEngineStub.vy")


@pytest.fixture(scope="module")
def book(engine):
    return load(BOOK, engine.address)


pytestmark = pytest.mark.usefixtures("isolate")


def listed(book: Any, params: kp.PerpParams | None = None) -> Any:
    p = params or kp.PerpParams(BAND, HALF_LIFE, CONVERGENCE, MAX_RATE)
    book.list_perp(p.band, p.half_life, p.convergence_hours, p.max_rate)
    return book


def as_engine(book: Any, engine: Any, method: str, *args: Any) -> Any:
    with boa.env.prank(engine.address):
        return getattr(book, method)(*args)


def test_perp_book_roles(book, engine):
    a, b = boa.env.generate_address("perp a"), boa.env.generate_address("perp b")
    stranger = boa.env.generate_address("perp stranger")
    with boa.reverts("perp: no engine"):
        load(BOOK, "0x" + "00" * 20)
    with boa.reverts("perp: not listed"):
        as_engine(book, engine, "trade", a, b, WAD, S, S)
    with boa.reverts("perp: not listed"):
        book.market()
    with boa.env.prank(stranger), boa.reverts("perp: not the risk admin"):
        book.list_perp(BAND, HALF_LIFE, CONVERGENCE, MAX_RATE)
    with boa.reverts("engine: bad perp params"):
        book.list_perp(BAND + 1, HALF_LIFE, CONVERGENCE, MAX_RATE)
    listed(book)
    with boa.reverts("perp: listed"):
        listed(book)
    with boa.env.prank(stranger), boa.reverts("perp: not the risk admin"):
        book.set_params(BAND, HALF_LIFE, CONVERGENCE, MAX_RATE)
    # The risk admin is not the engine: only the engine writes positions.
    for method, args in (
        ("trade", (a, b, WAD, S, S)),
        ("settle", (a, S)),
        ("move", (a, b, WAD, S)),
    ):
        with boa.reverts("perp: not the engine"):
            getattr(book, method)(*args)
    with boa.reverts("perp: self trade"):
        as_engine(book, engine, "trade", a, a, WAD, S, S)
    with boa.reverts("perp: size"):
        as_engine(book, engine, "trade", a, b, 0, S, S)
    for fraction in (0, WAD + 1):
        with boa.reverts("perp: fraction"):
            as_engine(book, engine, "move", a, b, fraction, S)
    with boa.reverts("perp: self trade"):
        as_engine(book, engine, "move", a, a, WAD, S)


def test_perp_book_fill_settle_and_margin_terms_fixed_values(book, engine):
    a, b = boa.env.generate_address("perp long"), boa.env.generate_address("perp short")
    boa.env.evm.patch.timestamp = T0
    listed(book)
    assert events(book) == [
        (
            "PerpListed",
            {"params": kp.PerpParams(BAND, HALF_LIFE, CONVERGENCE, MAX_RATE).pack(), "time": T0},
        )
    ]
    boa.env.time_travel(seconds=HALF_LIFE)
    # a buys 3 at 2100 against S = 2000: pays 3 * 100 = 300; the premium 5% at weight 1/2
    # gives pbar 2.5%.
    assert as_engine(book, engine, "trade", a, b, 3 * WAD, 2_100 * WAD, S) == (
        -300 * WAD,
        300 * WAD,
    )
    assert events(book) == [
        ("PerpFill", {"buyer": a, "seller": b, "size": 3 * WAD, "price": 2_100 * WAD, "spot": S,
                      "time": T0 + HALF_LIFE, "buyer_cash": -300 * WAD, "seller_cash": 300 * WAD})
    ]  # fmt: skip
    assert tuple(book.position(a)) == (3 * WAD, S, 0) and tuple(book.position(b)) == (
        -3 * WAD,
        S,
        0,
    )
    assert book.open_interest() == 3 * WAD
    assert book.funding_rate() == 10**15  # 2.5% / 8 h = 0.3125%, capped at 0.1% an hour
    assert book.mark(S) == 2_050 * WAD
    # One hour at the capped 0.1% of 2000: F = 2 a unit; the long owes 6, the short is owed 6.
    boa.env.time_travel(seconds=3_600)
    assert book.margin_terms(a, S) == (3 * WAD, S, 6 * WAD)
    assert book.margin_terms(b, S) == (-3 * WAD, S, -6 * WAD)
    # Settled at S = 2100: that hour's funding is priced at the touch's index, 0.1% of 2100 =
    # 2.1 a unit, so the long owes 6.3 and gains 300 of price: 293.7; the short the opposite.
    assert as_engine(book, engine, "settle", a, 2_100 * WAD) == 2_937 * WAD // 10
    assert events(book) == [
        ("PerpSettled", {"account": a, "spot": 2_100 * WAD, "time": T0 + HALF_LIFE + 3_600,
                         "cash": 2_937 * WAD // 10})
    ]  # fmt: skip
    assert as_engine(book, engine, "settle", b, 2_100 * WAD) == -2_937 * WAD // 10
    assert book.market()[3] == 21 * WAD // 10
    assert book.margin_terms(a, 2_100 * WAD) == (3 * WAD, 2_100 * WAD, 0)
    flat = boa.env.generate_address("perp flat")
    assert book.margin_terms(flat, S) == (0, 0, 0)
    # Settling an account without a position writes nothing (the engine settles every account
    # it touches).
    assert as_engine(book, engine, "settle", flat, S) == 0
    assert (book.position_words(flat, 0), book.position_words(flat, 1)) == (0, 0)
    with boa.reverts("engine: perp price outside band"):
        as_engine(book, engine, "trade", a, b, WAD, 2_100 * WAD + 1, S)
    with boa.reverts("engine: perp size too large"):
        as_engine(book, engine, "trade", a, b, 2**96, S, S)
    with boa.reverts("engine: perp clock went back"):
        boa.env.evm.patch.timestamp = T0
        as_engine(book, engine, "settle", a, S)


def test_perp_book_set_params_accrues_at_the_engines_oracle_price(book, engine):
    a, b = boa.env.generate_address("perp long"), boa.env.generate_address("perp short")
    boa.env.evm.patch.timestamp = T0
    listed(book)
    boa.env.time_travel(seconds=HALF_LIFE)
    as_engine(book, engine, "trade", a, b, WAD, 2_100 * WAD, S)  # pbar 2.5%
    boa.env.time_travel(seconds=1_800)
    # Half an hour at the capped 0.1% of the oracle's 3000: F = 1.5; then the band 2% clamps
    # the premium to 2%.
    engine.set_spot(3_000 * WAD)
    book.set_params(2 * 10**16, HALF_LIFE, CONVERGENCE, MAX_RATE)
    lane = kp.PerpParams(2 * 10**16, HALF_LIFE, CONVERGENCE, MAX_RATE).pack()
    assert events(book) == [
        ("PerpParamsSet", {"params": lane, "spot": 3_000 * WAD, "time": T0 + HALF_LIFE + 1_800})
    ]
    m = book.market()
    assert (m[0], m[2], m[3]) == (2 * 10**16, T0 + HALF_LIFE + 1_800, 3 * WAD // 2)
    assert m[4] == lane
    engine.set_spot(0)
    with boa.reverts("engine: perp index out of range"):
        book.set_params(BAND, HALF_LIFE, CONVERGENCE, MAX_RATE)


def test_perp_book_move_passes_a_fraction_at_the_index(book, engine):
    src, dst, other = (boa.env.generate_address(f"perp move {i}") for i in range(3))
    boa.env.evm.patch.timestamp = T0
    listed(book)
    as_engine(book, engine, "trade", src, other, 3 * WAD + 1, S, S)  # at the index: no premium
    boa.env.time_travel(seconds=600)
    # Half of 3e18 + 1 units, toward zero: 1.5e18 moves, the odd wei stays with the source.
    # Both settle at 2010 first (no premium, so no funding): the source gains
    # (3e18 + 1) * 10, i.e. 30e18 + 10 wei; the target has nothing to settle.
    cash = as_engine(book, engine, "move", src, dst, WAD // 2, 2_010 * WAD)
    assert cash == (30 * WAD + 10, 0)
    assert events(book)[0][1]["size"] == 3 * WAD // 2
    assert tuple(book.position(src)) == (3 * WAD // 2 + 1, 2_010 * WAD, 0)
    assert tuple(book.position(dst)) == (3 * WAD // 2, 2_010 * WAD, 0)
    assert book.open_interest() == 3 * WAD + 1  # a long moved to a long
    # A short's fraction moves as a short.
    as_engine(book, engine, "move", other, dst, WAD, 2_010 * WAD)
    assert book.position(other)[0] == 0 and book.position(dst)[0] == 3 * WAD // 2 - 3 * WAD - 1
    assert book.open_interest() == 3 * WAD // 2 + 1


def test_perp_book_works_against_the_real_engine_and_oracle(proto):
    """The book's two reads of its engine, `risk_admin()` and `oracle()`, are the
    MarginEngine's, and the oracle's `price()` is the OracleAggregator's."""
    p = proto
    with boa.env.anchor():
        book = load(BOOK, p.engine.address)
        with boa.env.prank(p.engine.risk_admin()):
            book.list_perp(BAND, HALF_LIFE, CONVERGENCE, MAX_RATE)
            boa.env.time_travel(seconds=60)
            book.set_params(BAND, HALF_LIFE, CONVERGENCE, MAX_RATE)
        spot = int(p.oracle.price()[0])
        assert events(book)[0][1]["spot"] == spot and spot > 0
        stranger = boa.env.generate_address("perp stranger")
        with boa.env.prank(stranger), boa.reverts("perp: not the risk admin"):
            book.set_params(BAND, HALF_LIFE, CONVERGENCE, MAX_RATE)


# ---------------------------------------------------------------------------------------------
# The golden sequence and the properties


def test_perp_golden_sequence_matches_the_twin_to_the_wei(book, engine):
    """The committed sequence replayed through the book's storage: every market word and
    every position word after every step, and every account's cash (the sum of what the book
    returned), to the wei; reverts at the same steps with the same reasons."""
    data = json.loads(golden_perp.PATH.read_text())
    assert data == json.loads(json.dumps(golden_perp.generate())), (
        "golden_perp.json is stale: regenerate it"
    )
    names = {a: boa.env.generate_address(f"golden perp {a}") for a in data["accounts"]}
    cash = dict.fromkeys(data["accounts"], 0)

    def replay(step: dict[str, Any]) -> None:
        spot = int(step["spot"])
        kind = step["kind"]
        if kind in ("fill", "wash"):
            got = as_engine(book, engine, "trade", names[step["buyer"]], names[step["seller"]],
                            int(step["size"]), int(step["price"]), spot)  # fmt: skip
            cash[step["buyer"]] += got[0]
            cash[step["seller"]] += got[1]
        elif kind == "settle":
            got = as_engine(book, engine, "settle", names[step["account"]], spot)
            assert got == int(step["amount"])
            cash[step["account"]] += got
        elif kind == "params":
            engine.set_spot(spot)
            book.set_params(*data["params"][step["params"]])
        elif kind == "settle_all":
            for a in data["accounts"]:
                cash[a] += as_engine(book, engine, "settle", names[a], spot)

    boa.env.evm.patch.timestamp = data["start"]
    book.list_perp(*data["params"][0])
    reverts = 0
    for i, step in enumerate(data["steps"]):
        boa.env.evm.patch.timestamp = step["now"]
        if "revert" in step:
            reverts += 1
            with boa.reverts(step["revert"]):
                replay(step)
        else:
            replay(step)
        state = step["state"]
        assert [str(book.market_words(0)), str(book.market_words(1))] == state["market"], i
        for a in data["accounts"]:
            words = [str(book.position_words(names[a], 0)), str(book.position_words(names[a], 1))]
            assert words == state["positions"][a], (i, a)
            assert str(cash[a]) == state["cash"][a], (i, a)
    assert reverts > 0
    total = sum(int(v) for v in data["steps"][-1]["state"]["cash"].values())
    assert -4 * len(data["steps"]) <= total <= 0


ACCOUNTS = 4
prices_in_band = st.integers(-1_000_000, 1_000_000)  # millionths of the band
step = st.tuples(
    st.integers(0, ACCOUNTS - 1),
    st.integers(1, ACCOUNTS - 1),
    st.integers(1, 10**6 * WAD),
    prices_in_band,
    st.sampled_from((0, 1, 12, 600, 3_600, 86_400)),
    st.integers(-50_000, 50_000),  # index move, millionths
    st.one_of(st.none(), st.integers(0, ACCOUNTS - 1)),  # an account settled after the fill
    st.one_of(st.none(), st.integers(0, len(golden_perp.PARAMS) - 1)),  # new parameters
    st.one_of(  # a liquidation move: (source, offset to the target, fraction)
        st.none(),
        st.tuples(st.integers(0, ACCOUNTS - 1), st.integers(1, ACCOUNTS - 1), st.integers(1, WAD)),
    ),
)


def _replay_logs(logs: list[tuple[str, dict[str, Any]]], names: list[str]) -> kp.PerpBook:
    """A mirror of the book from its events alone (accounts by their index in `names`)."""
    index = {n.lower(): str(i) for i, n in enumerate(names)}
    return kp.replay((name, {k: index.get(str(v).lower(), v) for k, v in fields.items()})
                     for name, fields in logs)  # fmt: skip


@given(
    steps=st.lists(step, min_size=1, max_size=8), params=st.integers(0, len(golden_perp.PARAMS) - 1)
)
@settings(max_examples=scaled(25))
def test_perp_funding_is_zero_sum_up_to_protocol_rounding(book, engine, steps, params):
    """Fills between accounts, time and index moves, settlements of single accounts,
    parameter changes and liquidation moves, then everyone settles: the accounts' cash sums to
    at most 0 (longs and shorts net to zero, so funding and price PnL cancel, and every
    rounding takes from an account), by less than a wei per settlement; the book agrees with
    keeper/perp.py to the wei, its open interest is the longs' total and the shorts' total,
    and a mirror rebuilt from its events alone holds the same words."""
    names = [boa.env.generate_address(f"perp zero-sum {i}") for i in range(ACCOUNTS)]
    p = golden_perp.PARAMS[params]
    now = T0
    boa.env.evm.patch.timestamp = now
    with boa.env.anchor():
        logs: list[tuple[str, dict[str, Any]]] = []
        listed(book, p)
        logs += events(book)
        twin = kp.PerpBook(kp.new_market(p, now))
        spot = S
        touches = 0
        cash = [0] * ACCOUNTS
        for buyer, offset, size, where, dt, move, poke, new_params, liquidation in steps:
            seller = (buyer + offset) % ACCOUNTS
            now += dt
            boa.env.evm.patch.timestamp = now
            spot = spot * (10**6 + move) // 10**6
            band = twin.market.params.band
            price = spot + band * spot // WAD * where // 10**6
            got = as_engine(book, engine, "trade", names[buyer], names[seller], size, price, spot)
            logs += events(book)
            assert got == twin.fill(str(buyer), str(seller), size, price, spot, now)
            cash[buyer] += got[0]
            cash[seller] += got[1]
            touches += 2
            if poke is not None:
                got = as_engine(book, engine, "settle", names[poke], spot)
                logs += events(book)
                assert got == twin.settle(str(poke), spot, now)
                cash[poke] += got
                touches += 1
            if new_params is not None:
                q = golden_perp.PARAMS[new_params]
                engine.set_spot(spot)
                book.set_params(q.band, q.half_life, q.convergence_hours, q.max_rate)
                logs += events(book)
                twin.set_params(q, spot, now)
            if liquidation is not None:
                src, off, fraction = liquidation
                dst = (src + off) % ACCOUNTS
                got = as_engine(book, engine, "move", names[src], names[dst], fraction, spot)
                logs += events(book)
                assert got == twin.move(str(src), str(dst), fraction, spot, now)
                cash[src] += got[0]
                cash[dst] += got[1]
                touches += 2
        now += 3_600
        boa.env.evm.patch.timestamp = now
        for i in range(ACCOUNTS):
            cash[i] += as_engine(book, engine, "settle", names[i], spot)
            logs += events(book)
            twin.settle(str(i), spot, now)
            touches += 1
        assert cash == [twin.cash.get(str(i), 0) for i in range(ACCOUNTS)]
        assert -touches <= sum(cash) <= 0
        sizes = [book.position(n)[0] for n in names]
        assert sum(sizes) == 0 and book.open_interest() == sum(max(q, 0) for q in sizes)
        assert kp.pack_market(twin.market) == (book.market_words(0), book.market_words(1))
        mirror = _replay_logs(logs, names)
        assert kp.pack_market(mirror.market) == kp.pack_market(twin.market)
        assert {a: kp.pack_position(q) for a, q in mirror.positions.items()} == {
            a: kp.pack_position(q) for a, q in twin.positions.items()
        }
        assert mirror.cash == twin.cash and mirror.open_interest == book.open_interest()
