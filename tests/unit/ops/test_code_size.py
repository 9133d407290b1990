"""Every contract a deployment creates fits EIP-170's 24,576-byte limit on deployed code
(runtime bytecode plus immutables), measured on the code titanoboa actually stores, which lifts
the limit itself (a contract over it would only fail on a real chain)."""

import boa
import pytest

from tests import protocol

EIP170 = 24_576


@pytest.fixture(scope="module")
def deployed(proto):
    router, pools = protocol.deploy_venues(proto)
    return {
        "MarginEngine": proto.engine,
        "RiskCalculator": proto.calculator,
        "Liquidator": proto.liquidator,
        "OracleAggregator": proto.oracle,
        "VolOracle": proto.vol,
        "Router": router,
        "ConstantProductPool": pools[0],
        "OrderBook": proto.order_book,
        "PerpBook": proto.perp_book,
    }


@pytest.mark.parametrize(
    "name",
    [
        "MarginEngine",
        "RiskCalculator",
        "Liquidator",
        "OracleAggregator",
        "VolOracle",
        "Router",
        "ConstantProductPool",
        "OrderBook",
        "PerpBook",
    ],
)
def test_deployed_code_fits_eip170(deployed, name):
    code = boa.env.evm.get_code(deployed[name].address)
    assert 0 < len(code) <= EIP170, f"{name}: {len(code)} bytes"
