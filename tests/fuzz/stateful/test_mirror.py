"""keeper/margin.py against the contract on every visited state (machines.py)."""

from tests.fuzz.stateful.machines import MirrorMachine, machine_settings

TestMirror = MirrorMachine.TestCase
TestMirror.settings = machine_settings("MirrorMachine")
