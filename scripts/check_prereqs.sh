#!/usr/bin/env bash
# One-line messages for missing prerequisites of `make setup`.
set -u
py="${1:-}"
if [ -z "$py" ] || ! command -v "$py" >/dev/null 2>&1; then
  echo "kappa: Python 3.11 is required: install python3.11 with its venv module" >&2; exit 1
fi
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "kappa: $py is $("$py" -V 2>&1); Python 3.11 is required (make PYTHON=/path/to/python3.11)" >&2; exit 1
fi
if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "kappa: $py lacks venv/ensurepip: install the python3.11-venv package" >&2; exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "kappa: npm is required for the anvil node: install Node.js 20+ with npm" >&2; exit 1
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "kappa: the pinned anvil package is for Linux x86_64; on $(uname -s)-$(uname -m) install anvil (foundry) on PATH" >&2
fi
exit 0
