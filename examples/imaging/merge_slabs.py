#!/usr/bin/python3
# merge_slabs.py - the reduce step of chunked labelling: joins the slabs that
# slab_label.py wrote into one folder. Every slab-local component is a node;
# wherever a foreground voxel on the last face of slab i touches one on the
# first face of slab i+1 (same position: face connectivity), their components
# are joined with a union-find. Final components are numbered in the order of
# their first voxel in raster order, as scipy.ndimage.label numbers them for
# the whole volume. Writes merged_sizes.csv (label,voxels), the summary JSON
# to $CORRAL_RESULT and stdout, and with --write-labels merged_labels.npy.
import argparse
import glob
import json
import os
import sys
import time

sys.dont_write_bytecode = True      # keep the examples folder free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imaging_common as ic  # noqa: E402
np = ic.np

SAME = ("slabs", "image", "shape", "filter", "size", "sigma", "threshold")


class UnionFind:
    """Disjoint sets over 0..n-1; the root of a set is its smallest member."""

    def __init__(self, n):
        self.parent = list(range(n))

    def find(self, a):
        parent = self.parent
        while parent[a] != a:
            parent[a] = parent[parent[a]]     # path halving
            a = parent[a]
        return a

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def roots(self):
        """Root of every element, by pointer jumping on the whole array."""
        p = np.asarray(self.parent, dtype=np.int64)
        while True:
            q = p[p]
            if np.array_equal(q, p):
                return p
            p = q


def read_slabs(folder, expected=None):
    """Metadata of all slabs in folder, sorted and checked for consistency."""
    metas = []
    for path in sorted(glob.glob(os.path.join(folder, "slab_*.json"))):
        with open(path) as f:
            metas.append(json.load(f))
    if not metas:
        raise ic.UsageError("no slab_*.json files in %s (run slab_label.py first)" % folder)
    first = metas[0]
    for m in metas:
        for key in SAME:
            if m.get(key) != first.get(key):
                raise ic.UsageError("slab %s differs from slab %s in %r (%r vs %r): "
                                    "use one output folder per chunked run"
                                    % (m["index"], first["index"], key, m.get(key), first.get(key)))
    n = first["slabs"]
    if expected is not None and int(expected) != n:
        raise ic.UsageError("expected %s slabs, the slab files say %d" % (expected, n))
    metas.sort(key=lambda m: m["index"])
    missing = sorted(set(range(1, n + 1)) - {m["index"] for m in metas})
    if missing or len(metas) != n:
        raise ic.UsageError("slabs missing in %s: %s of %d" % (folder, missing, n))
    shape = [int(s) for s in first["shape"].split("x")]
    if metas[0]["start"] != 0 or metas[-1]["stop"] != shape[0] or any(
            a["stop"] != b["start"] for a, b in zip(metas, metas[1:])):
        raise ic.UsageError("slabs in %s do not tile the volume" % folder)
    return metas, shape


def merge(folder, expected=None, write_labels=False, out=None):
    t0 = time.perf_counter()
    metas, shape = read_slabs(folder, expected)
    out = out or folder
    os.makedirs(out, exist_ok=True)
    faces = []
    for m in metas:
        path = os.path.join(folder, "slab_%04d_faces.npz" % m["index"])
        try:
            with np.load(path) as z:
                faces.append({k: z[k] for k in ("first", "last", "sizes")})
        except (OSError, KeyError, ValueError) as e:
            raise ic.UsageError("cannot read %s: %s" % (path, e))
    # Node j of slab i is its local label j+1, global label offset_i + j + 1.
    base = np.cumsum([0] + [m["components"] for m in metas])
    node_sizes = np.concatenate([f["sizes"] for f in faces]).astype(np.int64)
    uf = UnionFind(int(base[-1]))
    for i in range(len(metas) - 1):
        a, b = faces[i]["last"], faces[i + 1]["first"]
        touch = (a > 0) & (b > 0)
        na = a[touch].astype(np.int64) - metas[i]["offset"] - 1 + base[i]
        nb = b[touch].astype(np.int64) - metas[i + 1]["offset"] - 1 + base[i + 1]
        for x, y in np.unique(np.stack([na, nb], axis=1), axis=0):
            uf.union(int(x), int(y))
    # Roots are the smallest node of each set, i.e. the component's earliest voxel.
    roots, final = np.unique(uf.roots(), return_inverse=True)
    sizes = np.bincount(final, weights=node_sizes, minlength=len(roots)).astype(np.int64)

    ic.write_sizes_csv(os.path.join(out, "merged_sizes.csv"), sizes)
    result = {"image": metas[0]["image"], "slabs": len(metas), "shape": metas[0]["shape"],
              "ndim": len(shape), "filter": metas[0]["filter"],
              "threshold": metas[0]["threshold"],
              "sizes_file": os.path.join(out, "merged_sizes.csv")}
    if metas[0]["filter"] == "median":
        result["size"] = metas[0]["size"]
    elif metas[0]["filter"] == "gaussian":
        result["sigma"] = metas[0]["sigma"]
    if write_labels:
        result["labels_file"] = write_merged_labels(folder, out, metas, shape, base, final)
    result.update(ic.summary(sizes, int(np.prod(shape))))
    result["runtime_s"] = round(time.perf_counter() - t0, 6)
    return result


def write_merged_labels(folder, out, metas, shape, base, final):
    """Write the whole label image with the final labels, slab by slab."""
    path = os.path.join(out, "merged_labels.npy")
    dtype = np.int32 if int(np.prod(shape)) < 2**31 - 1 else np.int64
    tmp = path + ".tmp%d" % os.getpid()
    merged = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=tuple(shape))
    for i, m in enumerate(metas):
        lut = np.zeros(m["components"] + 1, dtype=dtype)
        lut[1:] = final[base[i]:base[i + 1]] + 1
        lab = np.load(os.path.join(folder, "slab_%04d_labels.npy" % m["index"]), mmap_mode="r")
        local = np.where(lab > 0, lab - m["offset"], 0)
        merged[m["start"]:m["stop"]] = lut[local]
    merged.flush()
    del merged
    os.replace(tmp, path)
    return path


def main(argv=None, env=None):
    ap = argparse.ArgumentParser(
        prog="merge_slabs.py",
        description="Merge the slabs written by slab_label.py into final component counts.")
    ap.add_argument("--dir", default="slabs", help="folder with the slab files (default slabs)")
    ap.add_argument("--slabs", type=int, help="expected number of slabs (checked)")
    ap.add_argument("--out", help="folder for merged_sizes.csv (default: --dir)")
    ap.add_argument("--write-labels", action="store_true",
                    help="also write the whole label image merged_labels.npy")
    args = ap.parse_args(argv)
    try:
        result = merge(args.dir, args.slabs, args.write_labels, args.out)
    except ic.UsageError as e:
        sys.stderr.write("merge_slabs.py: error: %s\n" % e)
        return 2
    ic.report_result(result, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
