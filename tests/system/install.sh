#!/usr/bin/env bash
# Installs the Debian packages of tests/system/packages.txt that are not yet installed.
# `make test` runs it, so that a fresh machine sets itself up; as root it uses apt-get,
# otherwise it names what is missing and stops.
set -euo pipefail
list="$(dirname "$0")/packages.txt"
missing=()
while read -r pkg _; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < "$list"
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "tests need Debian packages that are missing: ${missing[*]} (install them as root)" >&2
    exit 1
fi
echo "installing Debian packages for the tests: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
