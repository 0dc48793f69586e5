#!/usr/bin/python3
# slab_label.py - the map step of chunked labelling of one big .npy volume.
# Task i of N (1-based; --index, else from SGE_TASK_ID) reads slices
# [start, stop) of axis 0 plus a halo through a memory map, filters them as
# analyze.py does, keeps [start, stop), thresholds and labels it, and shifts
# its labels by offset = start * voxels_per_slice so that labels of different
# slabs never collide. In --out it writes slab_IIII_labels.npy (the labels),
# slab_IIII_faces.npz (first/last face, per-label sizes) and, last,
# slab_IIII.json (metadata). merge_slabs.py joins the slabs.
import argparse
import os
import sys
import time

sys.dont_write_bytecode = True      # keep the examples folder free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imaging_common as ic  # noqa: E402
np = ic.np

NAMES = ("image", "filter", "size", "sigma", "threshold", "out", "slabs", "index")


def _int_env(env, name):
    val = env.get(name)
    try:
        return int(val)
    except (TypeError, ValueError):
        return None       # unset, or "undefined" as SGE sets it outside arrays


def task_position(p, env):
    """(index, slabs), both 1-based / counts, from options, params or SGE_TASK_*."""
    tid, first = _int_env(env, "SGE_TASK_ID"), _int_env(env, "SGE_TASK_FIRST")
    last, step = _int_env(env, "SGE_TASK_LAST"), _int_env(env, "SGE_TASK_STEPSIZE")
    step = step or 1
    index, slabs = p.get("index"), p.get("slabs")
    if index is None and tid is not None:
        index = (tid - (first or 1)) // step + 1
    if slabs is None and first is not None and last is not None:
        slabs = (last - first) // step + 1
    if index is None or slabs is None:
        raise ic.UsageError("slab index and count unknown: give --index and --slabs, "
                            "or run as an array task (SGE_TASK_ID, SGE_TASK_FIRST, SGE_TASK_LAST)")
    try:
        index, slabs = int(index), int(slabs)
    except (TypeError, ValueError):
        raise ic.UsageError("index and slabs must be whole numbers, got %r and %r" % (index, slabs))
    if slabs < 1 or not 1 <= index <= slabs:
        raise ic.UsageError("need 1 <= index <= slabs, got index %d of %d slabs" % (index, slabs))
    return index, slabs


def slab_bounds(n0, slabs, index):
    """Slices [start, stop) of slab `index` (1-based) when n0 slices are cut
    into `slabs` nearly equal parts."""
    return (index - 1) * n0 // slabs, index * n0 // slabs


def label_slab(p, index, slabs, out):
    t0 = time.perf_counter()
    ic.check_pipeline_params(p)
    if p["threshold"] == "otsu":
        raise ic.UsageError("slab_label.py needs a numeric threshold: Otsu's threshold depends "
                            "on the whole volume (find it first, e.g. with analyze.py, "
                            "and pass it with --threshold)")
    if p["image"] and not str(p["image"]).lower().endswith(".npy"):
        raise ic.UsageError("slab_label.py reads .npy volumes only (memory-mapped), got %r"
                            % (p["image"],))
    vol = ic.load_image(p["image"], mmap=True)
    n0 = vol.shape[0]
    if slabs > n0:
        raise ic.UsageError("%d slabs requested but the volume has only %d slices" % (slabs, n0))
    start, stop = slab_bounds(n0, slabs, index)
    h = ic.halo(p)
    lo, hi = max(0, start - h), min(n0, stop + h)
    filtered = ic.apply_filter(vol[lo:hi], p)[start - lo:stop - lo]
    local, n = ic.label_foreground(filtered > p["threshold"])
    sizes = ic.component_sizes(local, n)

    slice_voxels = int(np.prod(vol.shape[1:]))
    offset = start * slice_voxels
    dtype = np.int32 if vol.size < 2**31 - 1 else np.int64
    labels = local.astype(dtype)
    labels[local > 0] += offset

    os.makedirs(out, exist_ok=True)
    base = os.path.join(out, "slab_%04d" % index)
    ic.save_npy(base + "_labels.npy", labels)
    ic.save_npz(base + "_faces.npz", first=labels[0], last=labels[-1], sizes=sizes)
    meta = {
        "index": index, "slabs": slabs, "start": start, "stop": stop, "halo": h,
        "offset": offset, "components": n, "foreground_voxels": int(sizes.sum()),
        "image": os.path.abspath(p["image"]), "shape": ic.shape_str(vol.shape),
        "filter": p["filter"], "size": p["size"], "sigma": p["sigma"],
        "threshold": p["threshold"], "labels_file": base + "_labels.npy",
    }
    meta["runtime_s"] = round(time.perf_counter() - t0, 6)
    ic.write_json(base + ".json", meta)       # written last: marks the slab complete
    return meta


def main(argv=None, env=None):
    env = os.environ if env is None else env
    ap = argparse.ArgumentParser(
        prog="slab_label.py",
        description="Label one slab (along axis 0) of a .npy volume; see merge_slabs.py.")
    ap.add_argument("--image", help="the volume, a .npy file")
    ap.add_argument("--slabs", help="number of slabs N (default: size of the SGE task range)")
    ap.add_argument("--index", help="this slab, 1..N (default: from SGE_TASK_ID)")
    ap.add_argument("--filter", help="median, gaussian or none (default none)")
    ap.add_argument("--size", help="median filter size (default 3)")
    ap.add_argument("--sigma", help="gaussian sigma (default 1.0)")
    ap.add_argument("--threshold", help="foreground is value > threshold (a number)")
    ap.add_argument("--out", help="folder for the slab files, one per chunked run (default slabs)")
    args = ap.parse_args(argv)
    cli = {name: getattr(args, name) for name in NAMES}
    try:
        p, _ = ic.resolve_params(cli, NAMES, env)
        index, slabs = task_position(p, env)
        meta = label_slab(p, index, slabs, p["out"] or "slabs")
    except ic.UsageError as e:
        sys.stderr.write("slab_label.py: error: %s\n" % e)
        return 2
    ic.report_result(meta, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
