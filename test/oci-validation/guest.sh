#!/usr/bin/env bash
# The OCI runtime validation suite in the pure cgroup v2 QEMU guest (test/vm/run.sh): built
# here, offline (run.sh with PACK), and run there against runc, crun and novabox-oci (run.sh
# with PREBUILT), the guest getting runc, crun and bash from this host.
#
#   RUNTIME_TOOLS_SRC=/path/to/runtime-tools test/oci-validation/guest.sh [test-name ...]
#
# Environment: RUNTIME_TOOLS_SRC and WORK as for run.sh; RUNTIMES (passed on); VM_TIMEOUT,
# the guest's whole run in seconds (default 3600). Prints run.sh's table from the guest.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
for t in runc crun; do
  command -v "$t" >/dev/null || { echo "guest.sh: no $t on this host to hand the guest (apt-get install $t)." >&2; exit 2; }
done
pack="$(mktemp /tmp/novabox-ocival.XXXXXX)"
trap 'rm -f "$pack"' EXIT
PACK="$pack" bash "$here/test/oci-validation/run.sh" "$@"
NOVABOX_VM_EXTRA_TOOLS="bash runc crun" bash "$here/test/vm/run.sh" --timeout "${VM_TIMEOUT:-3600}" --drive "ocival=$pack" -- \
  bash -c 'set -e; mkdir -p /tmp/ocival; head -c "$NOVABOX_VM_DRIVE_OCIVAL_SIZE" /run/novabox-vm/drives/ocival | tar -x -C /tmp/ocival
    PREBUILT=/tmp/ocival OUT=/tmp/ocival-out RUNTIMES="${1:-runc crun novabox-oci}" bash test/oci-validation/run.sh "${@:2}"' \
  guest "${RUNTIMES:-runc crun novabox-oci}" "$@"
