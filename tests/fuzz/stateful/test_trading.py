"""Orders, fills, operators and settlement with the oracle fixed (machines.py)."""

from tests.fuzz.stateful.machines import TradingMachine, machine_settings

TestTrading = TradingMachine.TestCase
TestTrading.settings = machine_settings("TradingMachine")
