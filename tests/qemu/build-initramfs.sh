#!/usr/bin/env bash
# Build a tiny busybox-static initramfs (cpio newc + gzip) for booting a Debian
# amd64 kernel under QEMU with NVMe / AHCI / virtio-scsi disks.
#
# Usage:
#   build-initramfs.sh -k MODDIR -s GUEST_SCRIPT -o OUT.cpio.gz [-b BINARY]... \
#                      [-m "mod1 mod2 ..."] [-w "/dev/nvme0n1 /dev/sda /dev/sdb"] \
#                      [-B /path/to/busybox]
#
#   -k MODDIR   the kernel's module tree, e.g. .../lib/modules/6.1.0-57-amd64
#               (from `dpkg-deb -x linux-image-*.deb DIR`)
#   -s SCRIPT   shell script run in the guest (as /guest.sh, by busybox sh, cwd /,
#               stdout+stderr on the serial console)
#   -b BINARY   a binary copied to /bin/<basename> (repeatable); a dynamic one
#               brings the shared libraries ldd names, at the same paths
#   -f SRC:DEST a file copied to DEST in the guest (repeatable)
#   -m MODS     top-level modules to load (dependencies are added and ordered
#               automatically from each .ko's .modinfo "depends=")
#   -w DEVS     device nodes /init waits for (max 20 s) before running the script;
#               can be overridden at boot with cw.wait=/dev/a,/dev/b on the cmdline
#   -B BUSYBOX  busybox binary (default /bin/busybox from busybox-static)
#
# No host modinfo/depmod is needed: the .modinfo ELF section is read with
# objcopy (binutils). .ko.xz / .ko.zst / .ko.gz are decompressed on the host.
#
# The guest prints "@@GUEST-BEGIN@@" before and "@@GUEST-END rc=N@@" after the
# script, then powers off with `poweroff -f`.
set -euo pipefail

MODDIR= SCRIPT= OUT= BUSYBOX=/bin/busybox
BINS=() FILES=()
MODS="nvme ahci sd_mod sg virtio_scsi virtio_pci"
WAIT="/dev/nvme0n1 /dev/sda /dev/sdb"
while getopts "k:s:o:b:f:m:w:B:" opt; do
    case $opt in
        k) MODDIR=$OPTARG ;;
        s) SCRIPT=$OPTARG ;;
        o) OUT=$OPTARG ;;
        b) BINS+=("$OPTARG") ;;
        f) FILES+=("$OPTARG") ;;
        m) MODS=$OPTARG ;;
        w) WAIT=$OPTARG ;;
        B) BUSYBOX=$OPTARG ;;
        *) sed -n '2,25p' "$0"; exit 2 ;;
    esac
done
[[ -d $MODDIR && -f $SCRIPT && -n $OUT ]] || { sed -n '2,25p' "$0"; exit 2; }
command -v cpio >/dev/null || { echo "cpio missing: apt-get install cpio" >&2; exit 1; }
command -v objcopy >/dev/null || { echo "objcopy missing: apt-get install binutils" >&2; exit 1; }
file_is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }
file_is_static "$BUSYBOX" || { echo "$BUSYBOX is not static (apt-get install busybox-static)" >&2; exit 1; }

KVER=$(basename "$MODDIR")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
R=$WORK/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,mnt,lib/modules/"$KVER"}

# ---- module index: name (with '-' normalised to '_') -> file -------------------
declare -A MODFILE
while IFS= read -r f; do
    b=${f##*/}; b=${b%%.ko*}; MODFILE[${b//-/_}]=$f
done < <(find "$MODDIR" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')

# decompress (if needed) a module into $WORK/ko/<name>.ko, print that path
declare -A PLAIN
plain_ko() {
    local n=$1 f=${MODFILE[$1]:-} dst=$WORK/ko/$1.ko
    [[ -n $f ]] || { echo "module $1 not found under $MODDIR" >&2; exit 1; }
    if [[ -z ${PLAIN[$n]:-} ]]; then
        mkdir -p "$WORK/ko"
        case $f in
            *.ko.xz)  xz -dc "$f" > "$dst" ;;
            *.ko.zst) zstd -qdc "$f" > "$dst" ;;
            *.ko.gz)  gzip -dc "$f" > "$dst" ;;
            *)        cp "$f" "$dst" ;;
        esac
        PLAIN[$n]=$dst
    fi
}
mod_depends() {   # prints the depends= list (space separated, normalised)
    objcopy -O binary --only-section=.modinfo "${PLAIN[$1]}" "$WORK/modinfo.bin"
    tr '\0' '\n' < "$WORK/modinfo.bin" | sed -n 's/^depends=//p' | tr ',' ' ' | tr '-' '_'
}

# depth-first post-order => every module after its dependencies
ORDER=()
declare -A SEEN
visit() {
    local n=${1//-/_} d
    [[ -n ${SEEN[$n]:-} ]] && return
    SEEN[$n]=1
    plain_ko "$n"     # not inside $(...): PLAIN must be set in this shell
    for d in $(mod_depends "$n"); do visit "$d"; done
    ORDER+=("$n")
}
for m in $MODS; do
    # built-in modules need no loading
    if grep -qE "/${m//_/[-_]}\.ko\$" "$MODDIR/modules.builtin" 2>/dev/null; then continue; fi
    visit "$m"
done
for n in "${ORDER[@]}"; do cp "${PLAIN[$n]}" "$R/lib/modules/$KVER/$n.ko"; done
printf '%s\n' "${ORDER[@]}" > "$R/lib/modules/$KVER/load-order"

# ---- busybox + applet links ----------------------------------------------------
cp "$BUSYBOX" "$R/bin/busybox"
"$BUSYBOX" --list-full | while read -r p; do
    [[ $p == bin/busybox ]] && continue
    # no modprobe: the kernel's request_module() then fails fast instead of
    # running busybox modprobe without a modules.dep
    [[ $p == */modprobe ]] && continue
    mkdir -p "$R/$(dirname "$p")"
    ln -sf /bin/busybox "$R/$p"
done

for b in "${BINS[@]}"; do
    cp "$b" "$R/bin/$(basename "$b")"; chmod 755 "$R/bin/$(basename "$b")"
    # Debug info only costs the guest's memory (the initramfs is unpacked into RAM).
    strip --strip-debug "$R/bin/$(basename "$b")"
    # A dynamic binary brings its loader and libraries, at the paths it names.
    file_is_static "$b" || ldd "$b" | grep -o '/[^ ]*' | while read -r lib; do
        mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"
    done
done
for f in "${FILES[@]}"; do mkdir -p "$R$(dirname "${f#*:}")"; cp "${f%%:*}" "$R${f#*:}"; done
cp "$SCRIPT" "$R/guest.sh"; chmod 755 "$R/guest.sh"

# ---- /init ---------------------------------------------------------------------
cat > "$R/init" <<EOF
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo 1 > /proc/sys/kernel/printk      # keep kernel chatter off the console
exec </dev/console >/dev/console 2>&1
KVER=$KVER
for m in \$(cat /lib/modules/\$KVER/load-order); do
    insmod /lib/modules/\$KVER/\$m.ko || echo "insmod \$m failed"
done
WAIT="$WAIT"
for a in \$(cat /proc/cmdline); do
    case \$a in cw.wait=*) WAIT=\$(echo "\${a#cw.wait=}" | tr , ' ') ;; esac
done
i=0
for d in \$WAIT; do
    while [ ! -e "\$d" ] && [ \$i -lt 200 ]; do sleep 0.1; i=\$((i+1)); done
    [ -e "\$d" ] || echo "WARNING: \$d did not appear"
done
echo "@@GUEST-BEGIN@@"
sh /guest.sh
echo "@@GUEST-END rc=\$?@@"
sync
poweroff -f
EOF
chmod 755 "$R/init"

(cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -1 > "$OUT"
echo "initramfs: $OUT ($(du -h "$OUT" | cut -f1)), modules: ${ORDER[*]}" >&2
