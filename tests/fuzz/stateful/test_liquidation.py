"""Auctions, bids, socialized losses and the insurance fund (machines.py)."""

from tests.fuzz.stateful.machines import LiquidationMachine, machine_settings

TestLiquidation = LiquidationMachine.TestCase
TestLiquidation.settings = machine_settings("LiquidationMachine")
