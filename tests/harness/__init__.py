"""Test harnesses: fast in-process EVMs for the property suite and benchmarks (see `revm`)."""

from tests.harness.revm import Chain, Contract, Event, Reverted

__all__ = ["Chain", "Contract", "Event", "Reverted"]
