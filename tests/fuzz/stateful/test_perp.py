"""PerpBook under a coalition that trades with, settles and liquidates itself (perp.py)."""

from tests.fuzz.stateful.machines import PerpMachine, machine_settings

TestPerp = PerpMachine.TestCase
TestPerp.settings = machine_settings("PerpMachine")
