"""A coalition of accounts on a still market: it can neither gain nor make the fund or other
users lose (machines.py, coalition.py)."""

from tests.fuzz.stateful.machines import CoalitionMachine, machine_settings

TestCoalition = CoalitionMachine.TestCase
TestCoalition.settings = machine_settings("CoalitionMachine")


def test_regression_straddle_on_the_mm_grid():
    """CoalitionMachine's shrunk failure before H_IM covered MM's scenarios: trader 0 takes its
    WETH out and buys a straddle from trader 1 (free, at 0% of its value) at a strike where an
    MM grid point falls and IM's grid has none; H_IM was 30,667.51 above H_MM 30,666.07."""
    state = CoalitionMachine()
    state.start()
    state.check_properties()
    state.withdraw(cash=False, percent=60, who=0)
    state.check_properties()
    state.straddle(buyer=0, percent=0, pick=0, seller=1, size=246)
    state.check_properties()
    state.teardown()
