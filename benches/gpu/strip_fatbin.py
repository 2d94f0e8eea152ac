#!/usr/bin/env python3
"""Blank the GPU code of other architectures in a CUDA shared library.

ONNX Runtime's CUDA provider (libonnxruntime_providers_cuda.so, 284 MB in
onnxruntime-gpu 1.31.1) carries machine code for sm_75, 80, 86, 89, 90 and
120. The device machine this project borrows takes at most 64 MiB per call,
so benches/gpu/pack.sh keeps only the architecture of that GPU (sm_90 for
H100/H200): every other entry of every fat binary in the `.nv_fatbin`
section is overwritten with zeros, in place, so that no offset or size in
the file changes and the blank regions compress to almost nothing. The CUDA
runtime picks the entry matching the device and never reads the others.

Usage: strip_fatbin.py IN.so OUT.so [--keep 90]

Fat binary layout (as the CUDA toolkit writes it; little-endian):
  header: u32 magic 0xBA55ED50, u16 version, u16 header size, u64 entries' size
  entry:  u16 kind (1 PTX, 2 ELF), u16 version, u32 header size,
          u64 payload size, ..., u32 sm architecture at offset 28
"""
import argparse
import collections
import struct
import sys

FATBIN_MAGIC = 0xBA55ED50


def section(data, wanted):
    """(offset, size) of ELF64 section `wanted`."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit("not a 64-bit ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i):
        return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)

    names = header(shstrndx)[4]
    for i in range(shnum):
        h = header(i)
        start = names + h[0]
        if data[start:data.index(0, start)].decode() == wanted:
            return h[4], h[5]
    sys.exit(f"no {wanted} section: not a CUDA library?")


def entries(data, off, size):
    """(payload offset, payload size, kind, arch) of every fat binary entry."""
    pos, end = off, off + size
    while pos + 16 <= end:
        magic, _, hsize, fsize = struct.unpack_from("<IHHQ", data, pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # fat binaries are 8-byte aligned
            continue
        e, stop = pos + hsize, pos + hsize + fsize
        while e < stop:
            kind, _, ehsize, psize = struct.unpack_from("<HHIQ", data, e)
            arch, = struct.unpack_from("<I", data, e + 28)
            yield e + ehsize, psize, kind, arch
            e += ehsize + psize
        pos = stop


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--keep", type=int, default=90, help="sm architecture to keep (default 90)")
    args = ap.parse_args()
    data = bytearray(open(args.src, "rb").read())
    off, size = section(data, ".nv_fatbin")
    kept, blanked = collections.Counter(), collections.Counter()
    for start, psize, kind, arch in list(entries(data, off, size)):
        if arch == args.keep:
            kept[(kind, arch)] += psize
        else:
            data[start:start + psize] = bytes(psize)
            blanked[(kind, arch)] += psize
    if not kept:
        sys.exit(f"{args.src}: no code for sm_{args.keep}; refusing to blank everything")
    kinds = {1: "PTX", 2: "SASS"}
    for label, c in (("kept", kept), ("blanked", blanked)):
        parts = ", ".join(f"{kinds.get(k, k)} sm_{a} {n / 1e6:.1f} MB" for (k, a), n in sorted(c.items()))
        print(f"{label}: {parts}")
    open(args.dst, "wb").write(data)


if __name__ == "__main__":
    main()
