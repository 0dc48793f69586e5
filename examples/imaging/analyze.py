#!/usr/bin/python3
# analyze.py - one task of an image-analysis sweep: filter one 2D/3D image,
# threshold it, label its connected components and count their voxels.
# Parameters: command-line options, else $CORRAL_PARAMS JSON, else PARAM_*.
# Writes the summary as a flat JSON object to $CORRAL_RESULT (if set) and
# stdout, and <tag>_labels.npy|.tif and <tag>_sizes.csv to the output folder.
import argparse
import os
import sys
import time

sys.dont_write_bytecode = True      # keep the examples folder free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imaging_common as ic  # noqa: E402
np = ic.np

NAMES = ("image", "filter", "size", "sigma", "threshold", "out")


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="analyze.py",
        description="Filter, threshold and label one image; count voxels per component. "
                    "Options not given are taken from $CORRAL_PARAMS / PARAM_* variables.")
    ap.add_argument("--image", help="input image: .npy, .tif/.tiff or .png (2D or 3D)")
    ap.add_argument("--filter", help="median, gaussian or none (default none)")
    ap.add_argument("--size", help="median filter size in voxels (default 3)")
    ap.add_argument("--sigma", help="gaussian filter sigma in voxels (default 1.0)")
    ap.add_argument("--threshold", help="foreground is value > threshold; a number or 'otsu' (default otsu)")
    ap.add_argument("--out", help="output folder (default imaging_results)")
    ap.add_argument("--label-format", choices=("npy", "tif"), default="npy",
                    help="file type of the label image (default npy)")
    return ap.parse_args(argv)


def analyze(p, point, label_format="npy", env=None):
    """Run the pipeline for resolved parameters p; returns the result dict."""
    t0 = time.perf_counter()
    ic.check_pipeline_params(p)
    img = ic.load_image(p["image"])
    filtered = ic.apply_filter(img, p)
    thr = ic.threshold_value(filtered, p["threshold"])
    labels, n = ic.label_foreground(filtered > thr)
    sizes = ic.component_sizes(labels, n)

    out = p["out"] or "imaging_results"
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise ic.UsageError("cannot create output folder %s: %s" % (out, e))
    stem = os.path.splitext(os.path.basename(p["image"]))[0]
    tag = ic.point_tag(stem, p, point)
    sizes_file = os.path.join(out, tag + "_sizes.csv")
    ic.write_sizes_csv(sizes_file, sizes)
    if label_format == "tif":
        import tifffile
        labels_file = os.path.join(out, tag + "_labels.tif")
        ic.write_atomic(labels_file, lambda tmp: tifffile.imwrite(tmp, labels))
    else:
        labels_file = os.path.join(out, tag + "_labels.npy")
        ic.save_npy(labels_file, labels)

    result = {
        "image": p["image"],
        "filter": p["filter"],
        "threshold": p["threshold"],
        "threshold_value": thr,
        "ndim": int(img.ndim),
        "shape": ic.shape_str(img.shape),
        "labels_file": labels_file,
        "sizes_file": sizes_file,
    }
    if p["filter"] == "median":
        result["size"] = p["size"]
    elif p["filter"] == "gaussian":
        result["sigma"] = p["sigma"]
    result.update(ic.summary(sizes, img.size))
    result["runtime_s"] = round(time.perf_counter() - t0, 6)
    return result


def main(argv=None, env=None):
    args = parse_args(argv)
    cli = {name: getattr(args, name) for name in NAMES}
    try:
        p, point = ic.resolve_params(cli, NAMES, env)
        result = analyze(p, point, args.label_format, env)
    except ic.UsageError as e:
        sys.stderr.write("analyze.py: error: %s\n" % e)
        return 2
    ic.report_result(result, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
