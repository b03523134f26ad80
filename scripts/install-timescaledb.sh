#!/usr/bin/env bash
# Build TimescaleDB (Apache-2 edition) from Debian's own source package into PostgreSQL 15, once.
# Bookworm ships no timescaledb package; trixie has the source. A private apt configuration adds
# a deb-src line for trixie without touching the system's sources.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
extdir=$("$PG_CONFIG" --sharedir)/extension
if ls "$extdir"/timescaledb.control >/dev/null 2>&1 && ls "$("$PG_CONFIG" --pkglibdir)"/timescaledb*.so >/dev/null 2>&1; then
    echo "timescaledb: already installed in $extdir"
    exit 0
fi

work=${LUCIOLE_BUILD_DIR:-/var/tmp/luciole-timescaledb}
apt_dir="$work/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d" "$work/src"
cat > "$apt_dir/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SRC
apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "APT::Sandbox::User=root"
)
echo "timescaledb: fetching Debian source package (trixie) through a private apt configuration"
apt-get "${apt_opts[@]}" -q update >/dev/null
cd "$work/src"
rm -rf timescaledb-*/
apt-get "${apt_opts[@]}" -q source --download-only timescaledb >/dev/null
dsc=$(ls -t timescaledb_*.dsc | head -n 1)
dpkg-source --no-check -x "$dsc" >/dev/null
srcdir=$(find . -maxdepth 1 -type d -name 'timescaledb-*' | head -n 1)
cd "$srcdir"
echo "timescaledb: building $(basename "$PWD") (Apache-only) for $("$PG_CONFIG" --version)"
PATH="$(dirname "$PG_CONFIG"):$PATH" ./bootstrap -DPG_CONFIG="$PG_CONFIG" -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF \
    -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DUSE_TELEMETRY=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
make -s -C build -j"$(nproc)" >/dev/null
make -s -C build install >/dev/null
echo "timescaledb: installed into $extdir"
