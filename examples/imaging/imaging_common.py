# Shared code of the Corral imaging examples: reading images, resolving a
# parameter point (command line > $CORRAL_PARAMS JSON > PARAM_* variables),
# the filter / threshold / label pipeline, and small output helpers.
# analyze.py, slab_label.py and merge_slabs.py import it from this folder.
import hashlib
import json
import os
import sys

try:
    import numpy as np
except ImportError:  # pragma: no cover - depends on the interpreter
    # The Debian packages (python3-numpy, ...) are seen only by /usr/bin/python3;
    # a "python3" found first on PATH (pyenv, a venv) may not see them.
    _DEBIAN_PY = "/usr/bin/python3"
    if (os.path.exists(_DEBIAN_PY) and os.path.isfile(sys.argv[0])
            and os.path.realpath(sys.executable) != os.path.realpath(_DEBIAN_PY)):
        os.execv(_DEBIAN_PY, [_DEBIAN_PY] + sys.argv)
    sys.stderr.write("error: numpy is missing; install the Debian packages "
                     "python3-numpy python3-scipy python3-skimage python3-tifffile "
                     "python3-imageio\n")
    sys.exit(2)
import scipy.ndimage as ndi

FILTERS = ("median", "gaussian", "none")
GAUSS_TRUNCATE = 4.0          # scipy's default, fixed here so the halo is known
DEFAULTS = {"filter": "none", "size": 3, "sigma": 1.0, "threshold": "otsu"}


class UsageError(Exception):
    """A bad input or parameter: reported on stderr, exit code 2."""


# ---------------------------------------------------------------- parameters
def _env_params(env):
    """The parameter point given by Corral: the $CORRAL_PARAMS JSON object,
    completed by PARAM_<NAME> variables (names lower-cased)."""
    point = {}
    for key, val in env.items():
        if key.startswith("PARAM_") and len(key) > 6:
            point[key[6:].lower()] = val
    path = env.get("CORRAL_PARAMS")
    if path:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise UsageError("cannot read $CORRAL_PARAMS file %s: %s" % (path, e))
        if not isinstance(data, dict):
            raise UsageError("$CORRAL_PARAMS file %s does not hold a JSON object" % path)
        point.update({str(k).lower(): v for k, v in data.items()})
    return point


def resolve_params(cli, names, env=None):
    """Merge command-line values (dict, None = not given) with the Corral
    parameter point and DEFAULTS. Returns (params, point) where point is the
    whole Corral parameter point (used to name outputs uniquely)."""
    env = os.environ if env is None else env
    point = _env_params(env)
    params = {}
    for name in names:
        if cli.get(name) is not None:
            params[name] = cli[name]
        elif name in point and point[name] not in (None, ""):
            params[name] = point[name]
        else:
            params[name] = DEFAULTS.get(name)
    return params, point


def check_pipeline_params(p):
    """Validate and type filter/size/sigma/threshold in place."""
    filt = str(p.get("filter") or "none").lower()
    if filt not in FILTERS:
        raise UsageError("unknown filter %r (use one of: %s)" % (p.get("filter"), ", ".join(FILTERS)))
    p["filter"] = filt
    try:
        size = float(p.get("size"))
    except (TypeError, ValueError):
        raise UsageError("size must be a whole number >= 1, got %r" % (p.get("size"),))
    if size != int(size) or size < 1:
        raise UsageError("size must be a whole number >= 1, got %r" % (p.get("size"),))
    p["size"] = int(size)
    try:
        p["sigma"] = float(p.get("sigma"))
    except (TypeError, ValueError):
        raise UsageError("sigma must be a number > 0, got %r" % (p.get("sigma"),))
    if not p["sigma"] > 0:
        raise UsageError("sigma must be a number > 0, got %r" % (p.get("sigma"),))
    thr = p.get("threshold")
    if isinstance(thr, str) and thr.strip().lower() == "otsu":
        p["threshold"] = "otsu"
    else:
        try:
            p["threshold"] = float(thr)
        except (TypeError, ValueError):
            raise UsageError("threshold must be a number or 'otsu', got %r" % (thr,))
        if not np.isfinite(p["threshold"]):
            raise UsageError("threshold must be finite, got %r" % (thr,))
    return p


def point_tag(stem, p, point):
    """A file-name tag unique per parameter point: readable part + hash of the
    resolved parameters and the whole Corral parameter point."""
    if p["filter"] == "median":
        ftag = "median%d" % p["size"]
    elif p["filter"] == "gaussian":
        ftag = "gauss%g" % p["sigma"]
    else:
        ftag = "nofilter"
    thr = p["threshold"]
    ttag = "otsu" if thr == "otsu" else "%g" % thr
    key = {k: v for k, v in p.items() if k != "out"}
    key["image"] = os.path.abspath(str(p.get("image")))
    key["_point"] = point
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:8]
    raw = "%s_%s_t%s_%s" % (stem, ftag, ttag, digest)
    return "".join(c if (c.isalnum() or c in "._-") else "-" for c in raw)


# -------------------------------------------------------------------- images
def load_image(path, mmap=False):
    """Read a 2D/3D image from .npy, .tif/.tiff, .png/.jpg. Colour PNG/JPEG
    images become grey by averaging R, G, B. Returns a numpy array."""
    if not path:
        raise UsageError("no image given (use --image or the parameter 'image')")
    if not os.path.isfile(path):
        raise UsageError("image file not found: %s" % path)
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            img = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        elif ext in (".tif", ".tiff"):
            import tifffile
            img = tifffile.imread(path)
        elif ext in (".png", ".jpg", ".jpeg"):
            import imageio
            img = np.asarray(imageio.imread(path))
            if img.ndim == 3 and img.shape[-1] in (3, 4):
                img = img[..., :3].astype(np.float32).mean(axis=-1)
        else:
            raise UsageError("unsupported image type %r for %s (use .npy, .tif, .png)" % (ext, path))
    except UsageError:
        raise
    except Exception as e:
        raise UsageError("cannot read image %s: %s" % (path, e))
    if img.ndim not in (2, 3):
        raise UsageError("image %s has %d dimensions; only 2D and 3D are supported" % (path, img.ndim))
    if img.size == 0:
        raise UsageError("image %s is empty" % path)
    return img


# ------------------------------------------------------------------ pipeline
def halo(p):
    """Slices needed on each side of a slab so that filtering the padded slab
    gives, in its interior, exactly the filtered whole volume."""
    if p["filter"] == "median":
        return p["size"] // 2
    if p["filter"] == "gaussian":
        return int(GAUSS_TRUNCATE * p["sigma"] + 0.5)
    return 0


def apply_filter(img, p):
    """The filter step, on float32 data (mode 'reflect' at the borders)."""
    img = np.asarray(img, dtype=np.float32)
    if p["filter"] == "median":
        return ndi.median_filter(img, size=p["size"], mode="reflect")
    if p["filter"] == "gaussian":
        return ndi.gaussian_filter(img, sigma=p["sigma"], mode="reflect", truncate=GAUSS_TRUNCATE)
    return img


def threshold_value(filtered, thr):
    """The numeric threshold: thr itself, or Otsu's threshold of the data."""
    if thr != "otsu":
        return float(thr)
    if float(filtered.min()) == float(filtered.max()):
        return float(filtered.min())
    from skimage.filters import threshold_otsu
    return float(threshold_otsu(filtered))


def label_foreground(mask):
    """Connected components with face connectivity (4 in 2D, 6 in 3D)."""
    dtype = np.int32 if mask.size < 2**31 - 1 else np.int64
    labels = np.zeros(mask.shape, dtype=dtype)
    n = ndi.label(mask, output=labels)
    return labels, int(n)


def component_sizes(labels, n):
    """Voxel counts of labels 1..n (index 0 of the result is label 1)."""
    return np.bincount(labels.ravel(), minlength=n + 1)[1:n + 1].astype(np.int64)


def summary(sizes, total_voxels):
    """The summary numbers shared by analyze.py and merge_slabs.py."""
    n = int(len(sizes))
    fg = int(sizes.sum()) if n else 0
    return {
        "components": n,
        "mean_size": float(fg) / n if n else 0.0,
        "max_size": int(sizes.max()) if n else 0,
        "min_size": int(sizes.min()) if n else 0,
        "foreground_voxels": fg,
        "foreground_fraction": float(fg) / total_voxels if total_voxels else 0.0,
    }


# ------------------------------------------------------------------- outputs
def write_atomic(path, write):
    """Call write(tmp_path), then rename to path, so readers never see a
    partly written file. write must write exactly to the given path."""
    tmp = "%s.tmp%d" % (path, os.getpid())
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, obj):
    def w(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.write("\n")
    write_atomic(path, w)


def write_sizes_csv(path, sizes, first_label=1):
    def w(tmp):
        with open(tmp, "w") as f:
            f.write("label,voxels\n")
            for i, s in enumerate(sizes):
                f.write("%d,%d\n" % (i + first_label, s))
    write_atomic(path, w)


def save_npy(path, arr):
    def w(tmp):
        with open(tmp, "wb") as f:
            np.save(f, arr)
    write_atomic(path, w)


def save_npz(path, **arrays):
    def w(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    write_atomic(path, w)


def report_result(result, env=None):
    """Write the flat result object to $CORRAL_RESULT (if set) and stdout."""
    env = os.environ if env is None else env
    target = env.get("CORRAL_RESULT")
    if target:
        write_json(target, result)
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def shape_str(shape):
    return "x".join(str(int(s)) for s in shape)
