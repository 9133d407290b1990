"""The keeper bot (DESIGN.md "Keeper"): a Silverback bot over pure parts.

Pure (no chain I/O, unit-tested without a node): `settings` (the network YAML's `keeper:` key),
`mirror` (every account rebuilt from decoded engine and liquidator events, evaluated with
keeper.margin), `planner` (which transactions to send), `txmanager` (nonces, fees, replacement,
spend cap, dry run: the policy, plus a thin sender). Chain I/O: `chain` (the event reader and
the market and drift-check reads) and `bot` (`silverback run keeper.runtime.bot:bot`).
See docs/keeper.md.
"""
