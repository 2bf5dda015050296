#!/usr/bin/env bash
# Debian packages IMSP needs beyond Python: fonts and Pango for PDF reports, Chromium for browser
# tests, curl for the chunked-upload test, poppler for looking at PDFs, wrk for the ingest
# benchmark, PgBouncer for the transaction-pooling test, HAProxy to check deploy/haproxy (and
# systemd-analyze, from Debian's systemd, for the units), Redis for the shared-state tests, Java 17
# for the spec's Java client example (the spec's C# example is not compiled: Debian ships no .NET
# SDK). Installs only what is missing.
set -euo pipefail
want=(fonts-noto-cjk libpango-1.0-0 libpangoft2-1.0-0 curl)
# Debian's own Python needs python3-venv for `python3 -m venv` (other Pythons ship ensurepip).
if ! "${PYTHON:-python3}" -c "import ensurepip" 2>/dev/null; then
  want+=(python3-venv)
fi
if [ "${1:-}" = "--dev" ]; then
  # chromium-l10n: Chinese strings of native widgets (the file chooser's 选择文件) in browser tests;
  # wrk: bench/bench_ingest.py; ffmpeg: test videos; pgbouncer: tests/foundation/test_pgbouncer.py;
  # haproxy: deploy/ config check and tests/server/test_haproxy.py; redis-server: shared-state tests
  want+=(chromium chromium-l10n poppler-utils wrk openjdk-17-jdk-headless ffmpeg pgbouncer haproxy redis-server)
fi
# The multi-host test (tests/server/test_multihost.py): hosts are network namespaces (iproute2)
# running real HAProxy, Redis and a private PostgreSQL cluster (util-linux's setpriv runs it as the
# postgres user).
if [ "${1:-}" = "--dev" ]; then
  want+=(iproute2 haproxy redis-server postgresql util-linux)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
