#!/usr/bin/env sh
# The whole local stack in one command (Prefect server, process work pool, the deployments of
# deploy/prefect.yaml, one worker), stopped the same way:
#
#   deploy/stack.sh up [--port 4200] [--no-ui]
#   deploy/stack.sh status
#   deploy/stack.sh down
#
# State, logs and Prefect's SQLite database live in $NEWSETL_HOME/stack. Same as `newsetl stack ...`.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m etl.cli stack "$@"
