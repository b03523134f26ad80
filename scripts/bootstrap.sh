#!/usr/bin/env bash
# Set up everything Luciole needs on Debian bookworm, idempotently: Debian packages,
# TimescaleDB for PostgreSQL 15, and the project's virtual environment (.venv).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(mosquitto mosquitto-clients postgresql-15 postgresql-server-dev-15 postgresql-client-15
          build-essential cmake dpkg-dev libssl-dev libkrb5-dev python3-venv python3-dev ca-certificates
          chromium chromium-driver  # chromium: the dashboard's browser tests
          wrk util-linux)  # wrk (pinned by taskset): bench/api.py's load generator
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "bootstrap: Debian packages present"
fi
# The Debian mosquitto and postgresql packages start system services on install; Luciole runs its
# own instances under ./var and does not need them (they are left alone if they were already there).

if [ "$(id -u)" -eq 0 ]; then
    bash scripts/install-timescaledb.sh
else
    sudo bash scripts/install-timescaledb.sh
fi

python=${PYTHON:-python3}
stamp=.venv/.luciole-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: creating the virtual environment in .venv"
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
    echo "$want" > "$stamp"
else
    echo "bootstrap: virtual environment up to date"
fi
