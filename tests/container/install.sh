#!/usr/bin/env bash
# Installs what `make container-test` needs and is not installed yet: Debian's Docker engine
# and debootstrap (the image's base is made from packages). As root it uses apt-get,
# otherwise it names what is missing and stops.
set -euo pipefail
missing=()
for pkg in docker.io debootstrap; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "the container test needs Debian packages that are missing: ${missing[*]} (install them as root)" >&2
    exit 1
fi
echo "installing Debian packages for the container test: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
