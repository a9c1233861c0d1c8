#!/usr/bin/env bash
# Sets up what tests/qemu.rs needs (Debian 12 bookworm host, as root):
#   tests/qemu/setup.sh [DEST]      DEST defaults to /var/cache/certwipe-qemu
# Installs qemu-system-x86 from bookworm-backports (matching the qemu-utils the
# image may already have from there), busybox-static and cpio, then unpacks
# (does NOT install) the current Debian kernel package into DEST/root and
# writes the uncompressed ELF DEST/vmlinux-<ver>, which QEMU boots directly
# (PVH), skipping the kernel's own decompression, slow under TCG.
# Idempotent: a second run only checks.
set -euo pipefail
DEST=${1:-${CERTWIPE_QEMU_DIR:-/var/cache/certwipe-qemu}}

# 1. backports suite (the image ships qemu-utils 1:10.0.2+ds-2+deb13u1~bpo12+1
#    but no backports entry; installing qemu-system-x86 from plain bookworm
#    (7.2) would downgrade/remove that qemu-utils).
if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > /etc/apt/sources.list.d/bookworm-backports.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi
apt-get update -qq
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[[ -x /bin/busybox ]] && ! readelf -l /bin/busybox | grep -q interpreter || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v objcopy >/dev/null || need+=(binutils)
if ((${#need[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports \
        --no-install-recommends "${need[@]}"
fi

# 2. kernel: the package linux-image-amd64 currently points at (bookworm-security)
KPKG=$(apt-cache depends linux-image-amd64/bookworm-security 2>/dev/null \
         | awk '/Depends: linux-image-/{print $2; exit}')
[[ -n $KPKG ]] || KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
KVER=${KPKG#linux-image-}
mkdir -p "$DEST"
if [[ ! -f $DEST/root/boot/vmlinuz-$KVER ]]; then
    (cd "$DEST" && apt-get download "$KPKG" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    dpkg-deb -x "$DEST/${KPKG}"_*.deb "$DEST/root"
    rm -f "$DEST/${KPKG}"_*.deb
fi

# 3. extract-vmlinux: decompress the payload of the bzImage (xz for 6.1;
#    zstd/gzip handled too) -> ELF with a PVH note; QEMU boots it directly,
#    skipping the ~3 s in-guest decompression under TCG.
if [[ ! -f $DEST/vmlinux-$KVER ]]; then
    python3 - "$DEST/root/boot/vmlinuz-$KVER" "$DEST/vmlinux-$KVER" <<'EOF'
import sys, lzma, zlib, subprocess
data = open(sys.argv[1], 'rb').read()
for magic, kind in ((b'\xfd7zXZ\x00', 'xz'), (b'\x28\xb5\x2f\xfd', 'zstd'), (b'\x1f\x8b\x08', 'gz')):
    off = data.find(magic)
    while off >= 0:
        try:
            if kind == 'xz':
                out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[off:])
            elif kind == 'gz':
                out = zlib.decompressobj(31).decompress(data[off:])
            else:
                out = subprocess.run(['zstd', '-qdc'], input=data[off:], capture_output=True).stdout
            if out[:4] == b'\x7fELF':
                open(sys.argv[2], 'wb').write(out); sys.exit(0)
        except Exception:
            pass
        off = data.find(magic, off + 1)
sys.exit('no ELF payload found in ' + sys.argv[1])
EOF
fi
echo "kernel:  $DEST/root/boot/vmlinuz-$KVER"
echo "vmlinux: $DEST/vmlinux-$KVER"
echo "modules: $DEST/root/lib/modules/$KVER"
