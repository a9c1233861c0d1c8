#!/usr/bin/env python3
"""certwipe side by side with dd, shred and (optionally) nwipe, on the same loop devices.

One command prints the whole table (markdown) that docs/design.md quotes:

  * dd's 4 MiB O_DIRECT zero write plus O_DIRECT read is the least a verified
    one-pass wipe can cost; certwipe's verified runs are given as a ratio to it,
    its unverified runs as a ratio to the dd write alone.
  * `shred -n 1` (one random pass, no verification) against certwipe's
    unverified random pass.
  * nwipe, when --nwipe PATH is given: one PRNG pass verified at the end, with
    chacha20 and with a fast non-cryptographic generator (xoroshiro256), against
    the same dd baseline, on one device and on four (slow: `--size-mib 256`
    keeps a run with nwipe in minutes; the ratios do not depend on the size).
  * one device, and four devices at once (dd, shred and nwipe run once per
    device in parallel; certwipe runs one process for all four); tmpfs-backed and
    disk-backed loop devices.
  * certwipe's peak RSS with one device, four, and sixteen small ones at once.

The machine is shared and noisy, so every round runs every command once, in
turn, and each ratio is the median over rounds of that round's ratio.

Needs root (losetup). Usage:
  sudo benches/vs_dd.py [--rounds N] [--size-mib N] [--nwipe PATH] [--only tmpfs|disk]
Run `cargo build --release` first. Leaves no loop device or file behind.
"""
import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "certwipe")


def set_binary(path):
    global BIN
    BIN = os.path.abspath(path)


@contextlib.contextmanager
def loops(backing_dir, count, size_mib):
    """`count` loop devices (direct I/O) over fresh files in `backing_dir`."""
    with tempfile.TemporaryDirectory(dir=backing_dir) as scratch:
        devices = []
        try:
            for i in range(count):
                image = os.path.join(scratch, f"bench{i}.img")
                with open(image, "wb") as f:
                    f.truncate(size_mib << 20)
                devices.append(subprocess.run(
                    ["losetup", "-f", "--show", "--direct-io=on", image],
                    check=True, capture_output=True, text=True).stdout.strip())
            os.environ["CERTWIPE_STATE_DIR"] = os.path.join(scratch, "state")
            yield devices
        finally:
            for device in devices:
                subprocess.run(["losetup", "-d", device], check=False)


def run_all(commands):
    """Runs the commands at once; returns the wall time and the largest peak RSS (MiB)."""
    start = time.perf_counter()
    children = []
    for cmd in commands:
        pid = os.fork()
        if pid == 0:
            fd = os.open(os.devnull, os.O_RDWR)
            for target in (0, 1, 2):
                os.dup2(fd, target)
            try:
                os.execvp(cmd[0], cmd)
            finally:
                os._exit(127)
        children.append((pid, cmd))
    peak = 0.0
    for pid, cmd in children:
        _, status, usage = os.wait4(pid, 0)
        if status != 0:
            sys.exit(f"{' '.join(cmd)} failed with status {status}")
        peak = max(peak, usage.ru_maxrss / 1024)
    return time.perf_counter() - start, peak


def per_device(template, devices):
    return [[part.replace("DEV", d) for part in template] for d in devices]


def dd_write(devices, size_mib):
    return per_device(["dd", "if=/dev/zero", "of=DEV", "bs=4M", f"count={size_mib // 4}", "oflag=direct"], devices)


def dd_read(devices, size_mib):
    return per_device(["dd", "if=DEV", "of=/dev/null", "bs=4M", f"count={size_mib // 4}", "iflag=direct"], devices)


def certwipe(devices, method, verify, prng):
    return [[BIN, "wipe", "--yes", "--method", method, "--verify", verify, "--prng", prng, *devices]]


def nwipe_flavour(path):
    """The PRNGs to compare (a cryptographic one and a fast one) and whether the
    build writes PDF reports, from its --help: 0.35+ has chacha20 and xoroshiro256
    and `-P noPDF`; Debian 12's 0.33 has isaac64 and mersenne and no PDF."""
    done = subprocess.run([path, "--help"], capture_output=True, text=True)
    text = done.stdout + done.stderr
    prngs = [p for p in ("chacha20", "xoroshiro256") if p in text] or [p for p in ("isaac64", "mersenne") if p in text]
    return prngs, ["-P", "noPDF"] if "noPDF" in text or "PDFreportpath" in text else []


def nwipe(path, devices, prng, pdf_flags):
    return [[path, "--autonuke", "--nogui", "--nowait", "--noblank", "--verify=last", *pdf_flags,
             "--method=random", f"--prng={prng}", *devices]]


def cases(devices, size_mib, nwipe_path):
    """name -> (commands, baseline name)."""
    table = {
        "dd write": (dd_write(devices, size_mib), None),
        "dd read": (dd_read(devices, size_mib), None),
        "certwipe random aes-ctr, verify last": (certwipe(devices, "random", "last", "aes-ctr"), "dd write+read"),
        "certwipe random chacha8, verify last": (certwipe(devices, "random", "last", "chacha8"), "dd write+read"),
        "certwipe zero, verify last": (certwipe(devices, "zero", "last", "aes-ctr"), "dd write+read"),
        "certwipe random aes-ctr, no verify": (certwipe(devices, "random", "off", "aes-ctr"), "dd write"),
        "certwipe random chacha8, no verify": (certwipe(devices, "random", "off", "chacha8"), "dd write"),
        "certwipe zero, no verify": (certwipe(devices, "zero", "off", "aes-ctr"), "dd write"),
        "shred -n 1 (no verify)": (per_device(["shred", "-n", "1", "DEV"], devices),
                                   "certwipe random aes-ctr, no verify"),
    }
    if nwipe_path:
        prngs, pdf_flags = nwipe_flavour(nwipe_path)
        for prng in prngs:
            table[f"nwipe {prng}, verify last"] = (nwipe(nwipe_path, devices, prng, pdf_flags), "dd write+read")
    return table


def bench(backing_dir, label, count, size_mib, rounds, nwipe_path, out):
    with loops(backing_dir, count, size_mib) as devices:
        table = cases(devices, size_mib, nwipe_path)
        # Warm-up: allocate the backing files and touch memory once.
        for commands, _ in table.values():
            run_all(commands)
        times = {name: [] for name in table}
        rss = []
        names = list(table)
        for r in range(rounds):
            # Rotate the order so no command always runs after the same one.
            for name in names[r % len(names):] + names[:r % len(names)]:
                elapsed, peak = run_all(table[name][0])
                times[name].append(elapsed)
                if name.startswith("certwipe"):
                    rss.append(peak)
        times["dd write+read"] = [w + r for w, r in zip(times["dd write"], times["dd read"])]
        gib = count * size_mib / 1024
        rows = []
        for name, (_, baseline) in table.items():
            median = statistics.median(times[name])
            if baseline:
                ratio = statistics.median(t / b for t, b in zip(times[name], times[baseline]))
                rows.append((name, f"{ratio:.2f}× {baseline}", median))
            else:
                rows.append((name, f"{gib / median:.2f} GiB/s", median))
        for name, ratio, median in rows:
            out.append(f"| {label} | {count} | {name} | {ratio} | {median:.3f} s |")
            # Each row as soon as it is known, so a long run that dies keeps what it measured.
            print(out[-1], file=sys.stderr, flush=True)
        return max(rss)


def peak_rss(count, size_mib):
    with loops("/dev/shm", count, size_mib) as devices:
        run_all(certwipe(devices, "random", "last", "aes-ctr"))
        return max(run_all(certwipe(devices, "random", "last", "aes-ctr"))[1] for _ in range(3))


def main():
    # A SIGTERM (timeout, Ctrl-C from a wrapper) still runs the cleanup in `loops`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--nwipe", metavar="PATH", help="an nwipe binary to compare with")
    parser.add_argument("--only", choices=["tmpfs", "disk"])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--certwipe", metavar="PATH", default=BIN,
                        help="the certwipe binary (a copy keeps a long run safe from rebuilds)")
    args = parser.parse_args()
    set_binary(args.certwipe)
    if os.geteuid() != 0:
        sys.exit("needs root for losetup")
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: build first (cargo build --release)")
    disk_dir = os.path.join(ROOT, "target", "bench-scratch")
    os.makedirs(disk_dir, exist_ok=True)
    out = ["| backing | devices | command | vs. baseline (median of rounds) | median time |",
           "|---|---|---|---|---|"]
    rss = {}
    for label, backing in (("tmpfs", "/dev/shm"), ("disk", disk_dir)):
        if args.only and args.only != label:
            continue
        for count in args.devices:
            rss[(label, count)] = bench(backing, label, count, args.size_mib, args.rounds, args.nwipe, out)
    print("\n".join(out))
    print()
    print("| certwipe peak RSS | MiB |")
    print("|---|---|")
    for (label, count), peak in rss.items():
        print(f"| {count} × {args.size_mib} MiB, {label} | {peak:.1f} |")
    print(f"| 16 × 64 MiB, tmpfs | {peak_rss(16, 64):.1f} |")


if __name__ == "__main__":
    main()
