"""The main machine over the whole protocol (tests/fuzz/stateful/machines.py)."""

from tests.fuzz.stateful.machines import ProtocolMachine, machine_settings

TestProtocol = ProtocolMachine.TestCase
TestProtocol.settings = machine_settings("ProtocolMachine")
