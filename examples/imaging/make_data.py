#!/usr/bin/python3
# make_data.py - deterministic input data for the imaging examples, made on
# the spot (no downloads): 3D bubble-like float32 volumes (binary blobs,
# blurred, plus Gaussian noise) as .npy (and .tif with --tiff), and, with
# --images2d, 2D sample images that ship inside scikit-image, as .png/.tif/.npy.
# Usage: make_data.py OUTDIR [--volumes N] [--size S] [--seed K] [--fraction F]
#                     [--images2d] [--tiff]
# Prints the paths of the files written, one per line.
import argparse
import inspect
import os
import sys

sys.dont_write_bytecode = True      # keep the examples folder free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imaging_common as ic  # noqa: E402
np = ic.np

# Grey-level images stored inside the Debian python3-skimage package (no fetch).
IMAGES_2D = ("coins", "camera", "moon")
DEFAULT_FRACTION = 0.2


def make_volume(size, seed, volume_fraction=DEFAULT_FRACTION, blob_fraction=0.1,
                blur=1.0, noise=0.15):
    """A size^3 float32 volume: bright blobs (~1) on a dark background (~0),
    blurred with a Gaussian of sigma `blur` and with N(0, noise) added."""
    from skimage.data import binary_blobs
    kw = {"length": size, "blob_size_fraction": blob_fraction, "n_dim": 3,
          "volume_fraction": volume_fraction}
    # The seed argument is called 'seed' in scikit-image < 0.21, 'rng' later.
    kw["seed" if "seed" in inspect.signature(binary_blobs).parameters else "rng"] = seed
    blobs = binary_blobs(**kw)
    vol = ic.ndi.gaussian_filter(blobs.astype(np.float32), sigma=blur)
    vol += np.random.default_rng(seed).normal(0.0, noise, vol.shape).astype(np.float32)
    return vol.astype(np.float32)


def write_volumes(outdir, n, size, seed, fraction, tiff):
    written = []
    for i in range(n):
        s = seed + i
        vol = make_volume(size, s, volume_fraction=fraction)
        name = "foam%d_seed%d" % (size, s)
        if fraction != DEFAULT_FRACTION:
            name += "_f%g" % fraction
        base = os.path.join(outdir, name)
        ic.save_npy(base + ".npy", vol)
        written.append(base + ".npy")
        if tiff:
            import tifffile
            ic.write_atomic(base + ".tif", lambda tmp: tifffile.imwrite(tmp, vol))
            written.append(base + ".tif")
    return written


def write_images2d(outdir):
    import imageio
    import tifffile
    import skimage.data
    written = []
    for name in IMAGES_2D:
        img = getattr(skimage.data, name)()
        base = os.path.join(outdir, name)
        ic.write_atomic(base + ".png", lambda tmp: imageio.imwrite(tmp, img, format="png"))
        ic.write_atomic(base + ".tif", lambda tmp: tifffile.imwrite(tmp, img))
        ic.save_npy(base + ".npy", img)
        written += [base + ".png", base + ".tif", base + ".npy"]
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="make_data.py",
        description="Write deterministic test volumes and 2D sample images.")
    ap.add_argument("outdir", help="folder to write to (created if missing)")
    ap.add_argument("--volumes", type=int, default=2, help="number of 3D volumes (default 2)")
    ap.add_argument("--size", type=int, default=256, help="voxels per side of a volume (default 256)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the first volume; volume i uses seed+i")
    ap.add_argument("--fraction", type=float, default=DEFAULT_FRACTION,
                    help="volume fraction of the bubbles before blur and noise (default 0.2)")
    ap.add_argument("--images2d", action="store_true", help="also write scikit-image's 2D samples")
    ap.add_argument("--tiff", action="store_true", help="also write the volumes as .tif")
    args = ap.parse_args(argv)
    if args.volumes < 0 or args.size < 8 or args.seed < 0 or not 0 < args.fraction < 1:
        sys.stderr.write("make_data.py: error: need --volumes >= 0, --size >= 8, --seed >= 0, "
                         "0 < --fraction < 1\n")
        return 2
    try:
        os.makedirs(args.outdir, exist_ok=True)
    except OSError as e:
        sys.stderr.write("make_data.py: error: cannot create %s: %s\n" % (args.outdir, e))
        return 2
    written = write_volumes(args.outdir, args.volumes, args.size, args.seed,
                            args.fraction, args.tiff)
    if args.images2d:
        written += write_images2d(args.outdir)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
