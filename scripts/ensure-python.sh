#!/usr/bin/env bash
# Prints the path of a Python interpreter of the given minor version (3.11, 3.12, 3.13): the one on PATH
# (python3.12), else pyenv's newest 3.12.x. Fails with one line when there is none.
set -euo pipefail
version=${1:?usage: ensure-python.sh 3.12}
# The interpreter's own path, not a pyenv shim's, so that a venv made from it does not depend on the shell.
if "python$version" -c 'import sys, venv, ensurepip; print(sys.executable)' 2>/dev/null; then
  exit 0
fi
if command -v pyenv >/dev/null; then
  installed=$(pyenv versions --bare | grep -E "^$version\.[0-9]+$" | sort -V | tail -n1 || true)
  if [ -n "$installed" ]; then
    echo "$(pyenv prefix "$installed")/bin/python3"
    exit 0
  fi
fi
echo "no Python $version found (neither python$version on PATH nor a pyenv $version.x)" >&2
exit 1
