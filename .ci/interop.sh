#!/usr/bin/env bash
# Independent iPhone clients for the interoperability tests
# (crates/snapvault-fakephone/tests/interop.rs), pinned:
#   Debian: libimobiledevice-utils (idevice_id, ideviceinfo, idevicepair), ifuse, fuse
#   PyPI:   pymobiledevice3, in a venv at target/interop/venv
#
#   .ci/interop.sh setup     install them (apt-get needs root; idempotent)
#
# The tests look for the venv there (or at $SNAPVAULT_INTEROP_VENV).
set -euo pipefail
cd "$(dirname "$0")/.."
PYMOBILEDEVICE3_VERSION=11.45.0
LIMD_VERSION=1.3.0-6+b3
IFUSE_VERSION=1.1.4~git20181007.3b00243-1
VENV="${SNAPVAULT_INTEROP_VENV:-$PWD/target/interop/venv}"

setup() {
  export DEBIAN_FRONTEND=noninteractive
  if ! command -v idevicepair >/dev/null || ! command -v ifuse >/dev/null; then
    apt-get update -qq
    # The pinned versions where the archive has them (Debian 12), else the archive's own.
    apt-get install -y -qq --no-install-recommends \
      "libimobiledevice-utils=$LIMD_VERSION" "ifuse=$IFUSE_VERSION" fuse >/dev/null 2>&1 ||
      apt-get install -y -qq --no-install-recommends libimobiledevice-utils ifuse fuse >/dev/null
  fi
  if ! [ -x "$VENV/bin/pymobiledevice3" ]; then
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV" 2>/dev/null || {
      apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$VENV"
    }
    "$VENV/bin/pip" install -q --disable-pip-version-check "pymobiledevice3==$PYMOBILEDEVICE3_VERSION"
  fi
  echo "interop.sh: $(dpkg-query -W -f='libimobiledevice-utils ${Version}, ifuse ' libimobiledevice-utils)$(dpkg-query -W -f='${Version}' ifuse), pymobiledevice3 $("$VENV/bin/pip" show pymobiledevice3 | sed -n 's/^Version: //p') in $VENV"
}

case "${1:-setup}" in
  setup) setup ;;
  *) echo "usage: $0 setup" >&2; exit 2 ;;
esac
