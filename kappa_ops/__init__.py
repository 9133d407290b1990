"""Kappa operations: deployment (config, plan, ape executor) and the crash demo.

Pure modules (no chain I/O, unit-testable): `config` (per-network YAML files) and `plan` (what to
deploy and wire). Chain I/O through ape: `deployer` (executes a plan, records addresses),
`chain` (batched reads into keeper.margin inputs) and `demo` (the crash scenario).
"""
