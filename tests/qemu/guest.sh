#!/bin/sh
# Runs inside the QEMU guest (tests/qemu.rs boots it): certwipe against an
# emulated NVMe, SATA (AHCI) and SCSI (virtio-scsi) disk. Each command's exit
# status, stdout and stderr are printed between @@ markers for the host to
# check, and the files it wrote are shipped back base64-encoded.
set -u
grep -q cw.guest=1 /proc/cmdline || { echo "not the QEMU guest: refusing to run"; exit 1; }

# Disks by what they are, not by name (names follow driver load order).
for d in /sys/block/sd*; do
    case "$(cat "$d/device/vendor")" in
        ATA*) SATA=/dev/${d##*/} ;;
        CWVENDOR*) SCSI=/dev/${d##*/} ;;
    esac
done
NVME=/dev/nvme0n1

run() {
    name=$1; shift
    "$@" > /tmp/out 2> /tmp/err < /dev/null
    echo "@@RUN $name rc=$?"
    echo "@@STDOUT"; cat /tmp/out
    echo "@@STDERR"; cat /tmp/err
    echo "@@END"
}

mkdir -p /tmp/certs
run identify-nvme certwipe identify --json "$NVME"
run identify-sata certwipe identify --json "$SATA"
run identify-scsi certwipe identify --json "$SCSI"
run sanitize-nvme-format certwipe sanitize --yes --json --action format-user-data \
    --cert-dir /tmp/certs --sign-key /key/station_ed25519 --asset QEMU-NVME-1 --operator "Li Wei" \
    --report /tmp/nvme.report.json "$NVME"
run sanitize-nvme-format-crypto certwipe sanitize --yes --action format-crypto "$NVME"
run sanitize-nvme-block-erase certwipe sanitize --yes --action block-erase "$NVME"
run status-nvme certwipe sanitize --status "$NVME"
run sanitize-sata-auto certwipe sanitize --yes --action auto "$SATA"
run sanitize-sata-security certwipe sanitize --yes --action security-erase-enhanced "$SATA"
run sanitize-scsi certwipe sanitize --yes --action block-erase "$SCSI"
run wipe-sata certwipe wipe --yes --verify last --report /tmp/sata.report.json "$SATA"

for f in /tmp/certs/* /tmp/*.report.json; do
    echo "@@FILE ${f##*/}"
    base64 "$f"
    echo "@@EOF"
done
