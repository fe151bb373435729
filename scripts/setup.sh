#!/usr/bin/env bash
# Installs everything fc25 needs on Debian 12: Debian packages (apt-get) and the npm packages used by tests and tools.
# Idempotent: installs only what is missing. --bench: also what the benchmarks compare against
# (scripts/bench-packages.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

lists=(scripts/debian-packages.txt)
bench=0
case "${1:-}" in
  "") ;;
  --bench) bench=1; lists+=(scripts/bench-packages.txt) ;;
  *) echo "usage: scripts/setup.sh [--bench]" >&2; exit 2 ;;
esac
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "${lists[@]}")
missing=()
for p in "${wanted[@]}"; do
  # node/npm may come from elsewhere (e.g. a newer Node.js already on PATH); only install them when absent.
  if [[ "$p" == nodejs || "$p" == npm ]]; then
    command -v "${p/nodejs/node}" >/dev/null 2>&1 && continue
  fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi
# Debian starts Janus as a service when it is installed; the benchmark runs its own.
if ((bench)) && command -v systemctl >/dev/null 2>&1 && systemctl is-enabled janus.service >/dev/null 2>&1; then
  $SUDO systemctl disable --now janus.service || true
fi

# npm packages for tests and tools (exact versions from package-lock.json). --ignore-scripts: no install script
# may download anything (onnxruntime-node ships its Linux x64 CPU library inside the package).
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing npm packages"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
else
  echo "setup: npm packages present"
fi
