# pragma version ~=0.4.3
"""
@title GasLimitedCaller: calls a view with a chosen gas limit (tests of gas starvation)
@license MIT
@notice TESTS ONLY. `call(target, data, gas_)` makes a static call with `gas_` gas and returns
        whether it succeeded and its return or revert data.
"""


@external
@view
def call(target: address, data: Bytes[1024], gas_: uint256) -> (bool, Bytes[256]):
    """
    @notice Static call `target` with `data` and at most `gas_` gas.
    @param target The contract.
    @param data The calldata.
    @param gas_ The gas limit of the call.
    @return ok Whether the call succeeded.
    @return out Its return data, or its revert data.
    """
    ok: bool = False
    out: Bytes[256] = b""
    ok, out = raw_call(target, data, max_outsize=256, gas=gas_, is_static_call=True, revert_on_failure=False)
    return ok, out
