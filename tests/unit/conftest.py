"""Fixtures shared by the venue tests (pool, router, TWAP feed): test tokens, deployers, users.

Module-scoped: each test module gets its own tokens and users.
"""

from __future__ import annotations

import boa
import pytest

from tests.conftest import deployer


@pytest.fixture(scope="module")
def token_deployer():
    return deployer("tests/contracts/TestToken.vy")


@pytest.fixture(scope="module")
def pool_deployer():
    return deployer("contracts/venues/ConstantProductPool.vy")


@pytest.fixture(scope="module")
def lp():
    return boa.env.generate_address("lp")


@pytest.fixture(scope="module")
def trader():
    return boa.env.generate_address("trader")


@pytest.fixture(scope="module")
def eth(token_deployer):
    return token_deployer.deploy("Ether", "ETH", 18)


@pytest.fixture(scope="module")
def usd(token_deployer):
    return token_deployer.deploy("US Dollar", "USD", 6)
