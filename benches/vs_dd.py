#!/usr/bin/env python3
"""certwipe against dd on the same 1 GiB loop device (tmpfs-backed, then disk-backed).

dd's reference is a 4 MiB O_DIRECT zero write plus a 4 MiB O_DIRECT read: the
least a verified one-pass wipe must cost. certwipe runs `wipe --method random
--verify last` (generate + write, then read + regenerate + compare). Prints
medians, the ratio certwipe / (dd write + dd read), and certwipe's peak RSS.

Needs root (losetup). Usage: sudo benches/vs_dd.py [--runs N] [--size-mib N]
Run `cargo build --release` first. Leaves no loop device or file behind.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "certwipe")


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def child_peak_rss_mib(cmd):
    """Runs cmd in a fresh child and returns its peak RSS (MiB) and wall time."""
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.execv(cmd[0], cmd)
    start = time.perf_counter()
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed with status {status}")
    return usage.ru_maxrss / 1024, elapsed


def bench(backing_dir, label, size_mib, runs):
    with tempfile.TemporaryDirectory(dir=backing_dir) as scratch:
        image = os.path.join(scratch, "bench.img")
        with open(image, "wb") as f:
            f.truncate(size_mib << 20)
        loop = subprocess.run(["losetup", "-f", "--show", "--direct-io=on", image],
                              check=True, capture_output=True, text=True).stdout.strip()
        try:
            count = str(size_mib // 4)
            dd_write = ["dd", "if=/dev/zero", f"of={loop}", "bs=4M", f"count={count}", "oflag=direct"]
            dd_read = ["dd", f"if={loop}", "of=/dev/null", "bs=4M", f"count={count}", "iflag=direct"]
            # Checkpoint journals go to the scratch directory, not the machine's /var/lib.
            os.environ["CERTWIPE_STATE_DIR"] = os.path.join(scratch, "state")
            wipe = [BIN, "wipe", "--yes", "--method", "random", "--verify", "last", loop]
            # Warm up: first touch of freed memory is slow on this VM.
            timed(dd_write), timed(dd_read), child_peak_rss_mib(wipe)
            writes, reads, wipes, rss = [], [], [], []
            for _ in range(runs):
                writes.append(timed(dd_write))
                reads.append(timed(dd_read))
                peak, elapsed = child_peak_rss_mib(wipe)
                wipes.append(elapsed)
                rss.append(peak)
            w, r, c = (statistics.median(x) for x in (writes, reads, wipes))
            gib = size_mib / 1024
            print(f"{label:5}: dd write {gib / w:5.2f} GiB/s, dd read {gib / r:5.2f} GiB/s, "
                  f"dd write+read {w + r:6.3f} s; certwipe random+verify {c:6.3f} s "
                  f"({2 * gib / c:5.2f} GiB/s of I/O); ratio {c / (w + r):4.2f}; "
                  f"peak RSS {max(rss):5.1f} MiB")
        finally:
            subprocess.run(["losetup", "-d", loop], check=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root for losetup")
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    disk_dir = os.path.join(ROOT, "target", "bench-scratch")
    os.makedirs(disk_dir, exist_ok=True)
    bench("/dev/shm", "tmpfs", args.size_mib, args.runs)
    bench(disk_dir, "disk", args.size_mib, args.runs)


if __name__ == "__main__":
    main()
