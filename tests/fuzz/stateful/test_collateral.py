"""Collateral, round trips, exits and hedge swaps (tests/fuzz/stateful/machines.py)."""

from tests.fuzz.stateful.machines import CollateralMachine, machine_settings

TestCollateral = CollateralMachine.TestCase
TestCollateral.settings = machine_settings("CollateralMachine")
