#!/usr/bin/python3
# Tests of the imaging examples (make_data, analyze, slab_label, merge_slabs),
# using unittest only. Run: python3 examples/imaging/test_imaging.py
# Results are checked against direct scipy/skimage computations made here and
# against small hand-made volumes with known components. Exit code 1 on failure.
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True      # keep the examples folder free of __pycache__
sys.path.insert(0, HERE)
import imaging_common as ic  # noqa: E402  (re-runs under /usr/bin/python3 if needed)
import analyze  # noqa: E402
import make_data  # noqa: E402
import merge_slabs  # noqa: E402
import slab_label  # noqa: E402
np, ndi = ic.np, ic.ndi


def clean_env(**extra):
    """os.environ without Corral/SGE task variables, plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PARAM_", "CORRAL_", "SGE_TASK"))}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def call(main, argv, env=None):
    """Run a program's main() in-process; returns (code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv, env if env is not None else clean_env())
        except SystemExit as e:          # argparse errors
            code = e.code
    return code, out.getvalue(), err.getvalue()


def run_script(name, args, env):
    return subprocess.run([sys.executable, os.path.join(HERE, name)] + args, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)


def direct_labels(img, filt="none", size=3, sigma=1.0, threshold=0.5):
    """The reference pipeline, written out independently of the programs."""
    img = np.asarray(img, dtype=np.float32)
    if filt == "median":
        img = ndi.median_filter(img, size=size)
    elif filt == "gaussian":
        img = ndi.gaussian_filter(img, sigma=sigma)
    if threshold == "otsu":
        from skimage.filters import threshold_otsu
        threshold = threshold_otsu(img)
    return ndi.label(img > threshold)


def read_sizes_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["label", "voxels"], rows[0]
    return [int(r[1]) for r in rows[1:]]


def cubes_volume():
    """20^3 volume with cubes of 2^3, 3^3, 4^3 voxels and two single voxels
    touching only at a corner: 5 components with face connectivity."""
    v = np.zeros((20, 20, 20), np.float32)
    v[1:3, 1:3, 1:3] = 1
    v[6:9, 6:9, 6:9] = 1
    v[12:16, 2:6, 12:16] = 1
    v[17, 17, 17] = v[18, 18, 18] = 1
    return v


def u_volume():
    """30x20x20 volume: a U whose legs (along axis 0) join only near the end,
    a rod through all slices, and a small cube: 3 components."""
    v = np.zeros((30, 20, 20), np.float32)
    v[0:28, 5, 3] = 1
    v[0:28, 5, 15] = 1
    v[25:28, 5, 3:16] = 1
    v[:, 15, 10] = 1
    v[10:13, 10:13, 10:13] = 1
    return v


class TestMakeData(unittest.TestCase):
    def test_same_seed_same_bytes(self):
        with tempfile.TemporaryDirectory() as d:
            a, b, c = (os.path.join(d, x) for x in "abc")
            for folder, seed in ((a, 3), (b, 3), (c, 4)):
                code, out, _ = call(lambda argv, env: make_data.main(argv),
                                    [folder, "--volumes", "2", "--size", "32", "--seed", str(seed),
                                     "--images2d", "--tiff"])
                self.assertEqual(code, 0)
            names = sorted(os.listdir(a))
            self.assertEqual(names, sorted(os.listdir(b)))
            self.assertIn("foam32_seed3.npy", names)
            self.assertIn("foam32_seed4.tif", names)
            self.assertIn("coins.png", names)
            for n in names:
                with open(os.path.join(a, n), "rb") as fa, open(os.path.join(b, n), "rb") as fb:
                    self.assertEqual(fa.read(), fb.read(), n)
            def vol(folder, name):
                return np.load(os.path.join(folder, name))
            # seed 3+1 and seed 4+0 are the same volume; seeds 3 and 5 differ
            self.assertTrue(np.array_equal(vol(a, "foam32_seed4.npy"), vol(c, "foam32_seed4.npy")))
            v3, v4 = vol(a, "foam32_seed3.npy"), vol(c, "foam32_seed5.npy")
            self.assertFalse(np.array_equal(v3, v4))
            self.assertEqual((v3.dtype, v3.shape), (np.float32, (32, 32, 32)))

    def test_cli_prints_files_and_2d_images_match_skimage(self):
        import skimage.data
        with tempfile.TemporaryDirectory() as d:
            r = run_script("make_data.py", [d, "--volumes", "1", "--size", "24", "--images2d"], clean_env())
            self.assertEqual(r.returncode, 0, r.stderr)
            listed = r.stdout.split()
            self.assertEqual(sorted(os.path.basename(p) for p in listed), sorted(os.listdir(d)))
            coins = skimage.data.coins()
            for ext in (".png", ".tif", ".npy"):
                self.assertTrue(np.array_equal(ic.load_image(os.path.join(d, "coins" + ext)), coins), ext)


class TestAnalyze(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.vol = make_data.make_volume(40, 7, volume_fraction=0.3)
        cls.vol_path = os.path.join(cls.dir, "vol.npy")
        np.save(cls.vol_path, cls.vol)
        cls.cubes_path = os.path.join(cls.dir, "cubes.npy")
        np.save(cls.cubes_path, cubes_volume())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def analyze(self, *argv, env=None):
        code, out, err = call(analyze.main, list(argv) + ["--out", os.path.join(self.dir, "out")], env)
        self.assertEqual(code, 0, err)
        return json.loads(out)

    def test_hand_made_cubes(self):
        r = self.analyze("--image", self.cubes_path, "--threshold", "0.5")
        self.assertEqual(r["components"], 5)
        self.assertEqual(sorted(read_sizes_csv(r["sizes_file"])), [1, 1, 8, 27, 64])
        self.assertEqual((r["max_size"], r["min_size"], r["foreground_voxels"]), (64, 1, 101))
        self.assertAlmostEqual(r["mean_size"], 101 / 5)
        self.assertAlmostEqual(r["foreground_fraction"], 101 / 8000)
        self.assertEqual((r["shape"], r["ndim"]), ("20x20x20", 3))

    def check_against_direct(self, r, img, filt, **kw):
        lab, n = direct_labels(img, filt, **kw)
        self.assertEqual(r["components"], n)
        sizes = np.bincount(lab.ravel())[1:]
        self.assertEqual(read_sizes_csv(r["sizes_file"]), sizes.tolist())
        self.assertTrue(np.array_equal(np.load(r["labels_file"]), lab))
        self.assertEqual(r["max_size"], int(sizes.max()))
        self.assertAlmostEqual(r["foreground_fraction"], (lab > 0).mean())
        self.assertGreaterEqual(r["runtime_s"], 0)

    def test_3d_volume_median_and_gaussian(self):
        r = self.analyze("--image", self.vol_path, "--filter", "median", "--size", "3", "--threshold", "0.5")
        self.assertEqual(r["size"], 3)
        self.check_against_direct(r, self.vol, "median", size=3, threshold=0.5)
        r = self.analyze("--image", self.vol_path, "--filter", "gaussian", "--sigma", "1.5",
                         "--threshold", "otsu")
        self.assertEqual((r["sigma"], r["threshold"]), (1.5, "otsu"))
        self.check_against_direct(r, self.vol, "gaussian", sigma=1.5, threshold="otsu")
        self.assertGreater(r["components"], 1)

    def test_2d_png_image(self):
        import imageio
        import skimage.data
        png = os.path.join(self.dir, "coins.png")
        imageio.imwrite(png, skimage.data.coins())
        r = self.analyze("--image", png, "--filter", "gaussian", "--sigma", "2", "--threshold", "otsu")
        self.assertEqual((r["shape"], r["ndim"]), ("303x384", 2))
        self.check_against_direct(r, skimage.data.coins(), "gaussian", sigma=2, threshold="otsu")
        self.assertGreater(r["components"], 10)

    def test_tif_labels_and_unique_names(self):
        import tifffile
        out = os.path.join(self.dir, "names")
        files = set()
        for filt, extra in (("median", ["--size", "3"]), ("median", ["--size", "5"]),
                            ("gaussian", ["--sigma", "1"]), ("none", [])):
            code, o, err = call(analyze.main, ["--image", self.vol_path, "--filter", filt,
                                               "--threshold", "0.5", "--out", out] + extra)
            self.assertEqual(code, 0, err)
            files.add(json.loads(o)["labels_file"])
        self.assertEqual(len(files), 4)
        self.assertEqual(len(os.listdir(out)), 8)
        r = self.analyze("--image", self.cubes_path, "--threshold", "0.5", "--label-format", "tif")
        self.assertTrue(r["labels_file"].endswith(".tif"))
        self.assertEqual(ndi.label(cubes_volume() > 0.5)[0].tolist(),
                         tifffile.imread(r["labels_file"]).tolist())


class TestParams(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.img = os.path.join(self.dir, "cubes.npy")
        np.save(self.img, cubes_volume())

    def tearDown(self):
        self.tmp.cleanup()

    def test_corral_params_json_and_result_file(self):
        params = os.path.join(self.dir, "params.json")
        result = os.path.join(self.dir, "result.json")
        with open(params, "w") as f:
            json.dump({"filter": "median", "size": 1, "image": self.img, "threshold": 0.5,
                       "out": os.path.join(self.dir, "o")}, f)
        code, out, err = call(analyze.main, [], clean_env(CORRAL_PARAMS=params, CORRAL_RESULT=result))
        self.assertEqual(code, 0, err)
        with open(result) as f:
            res = json.load(f)
        self.assertEqual(res, json.loads(out))
        self.assertEqual((res["components"], res["filter"], res["size"]), (5, "median", 1))
        for v in res.values():                       # a flat object
            self.assertIsInstance(v, (int, float, str))

    def test_param_env_variables_in_a_real_process(self):
        result = os.path.join(self.dir, "r.json")
        env = clean_env(PARAM_IMAGE=self.img, PARAM_FILTER="gaussian", PARAM_SIGMA="0.5",
                        PARAM_THRESHOLD="0.3", PARAM_OUT=os.path.join(self.dir, "o"),
                        CORRAL_RESULT=result)
        r = run_script("analyze.py", [], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(result) as f:
            res = json.load(f)
        lab, n = direct_labels(cubes_volume(), "gaussian", sigma=0.5, threshold=0.3)
        self.assertEqual((res["components"], res["sigma"], res["threshold"]), (n, 0.5, 0.3))

    def test_precedence_cli_then_json_then_env(self):
        params = os.path.join(self.dir, "p.json")
        with open(params, "w") as f:
            json.dump({"filter": "median", "size": 5}, f)
        env = clean_env(CORRAL_PARAMS=params, PARAM_FILTER="gaussian", PARAM_SIZE="9",
                        PARAM_SIGMA="2", PARAM_IMAGE=self.img)
        p, point = ic.resolve_params({"size": "3"}, analyze.NAMES, env)
        self.assertEqual((p["filter"], p["size"], p["sigma"], p["image"]), ("median", "3", "2", self.img))
        self.assertEqual(p["threshold"], "otsu")                     # the default
        self.assertEqual(point["size"], 5)


class TestErrors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.img = os.path.join(cls.dir, "v.npy")
        np.save(cls.img, cubes_volume())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def expect(self, main, argv, message, env=None):
        code, out, err = call(main, argv, env)
        self.assertEqual(code, 2, (argv, out, err))
        self.assertIn(message, err)
        self.assertEqual(out, "")

    def test_analyze_errors(self):
        out = ["--out", os.path.join(self.dir, "o")]
        four_d = os.path.join(self.dir, "4d.npy")
        np.save(four_d, np.zeros((2, 2, 2, 2)))
        bad = os.path.join(self.dir, "x.bmp")
        open(bad, "w").close()
        cases = [
            ([], "no image given"),
            (["--image", os.path.join(self.dir, "nope.npy")], "image file not found"),
            (["--image", self.img, "--filter", "blur"], "unknown filter 'blur'"),
            (["--image", self.img, "--filter", "median", "--size", "2.5"], "size must be a whole number"),
            (["--image", self.img, "--size", "0"], "size must be a whole number"),
            (["--image", self.img, "--sigma", "-1"], "sigma must be a number > 0"),
            (["--image", self.img, "--threshold", "high"], "threshold must be a number or 'otsu'"),
            (["--image", four_d], "only 2D and 3D"),
            (["--image", bad], "unsupported image type"),
        ]
        for argv, message in cases:
            self.expect(analyze.main, argv + out, message)
        self.expect(analyze.main, out, "cannot read $CORRAL_PARAMS",
                    clean_env(CORRAL_PARAMS=os.path.join(self.dir, "missing.json")))
        lst = os.path.join(self.dir, "list.json")
        with open(lst, "w") as f:
            f.write("[1, 2]")
        self.expect(analyze.main, out, "does not hold a JSON object", clean_env(CORRAL_PARAMS=lst))

    def test_exit_code_of_real_process(self):
        r = run_script("analyze.py", ["--image", self.img, "--filter", "bogus"], clean_env())
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
        self.assertIn("analyze.py: error: unknown filter", r.stderr)

    def test_slab_and_merge_errors(self):
        out = ["--out", os.path.join(self.dir, "s")]
        base = ["--image", self.img] + out
        self.expect(slab_label.main, base + ["--threshold", "otsu", "--slabs", "2", "--index", "1"],
                    "needs a numeric threshold")
        self.expect(slab_label.main, base + ["--threshold", "0.5"], "slab index and count unknown")
        self.expect(slab_label.main, base + ["--threshold", "0.5", "--slabs", "2", "--index", "3"],
                    "need 1 <= index <= slabs")
        self.expect(slab_label.main, base + ["--threshold", "0.5", "--slabs", "21", "--index", "1"],
                    "only 20 slices")
        png = os.path.join(self.dir, "a.png")
        self.expect(slab_label.main, ["--image", png, "--threshold", "0.5", "--slabs", "1", "--index", "1"],
                    "reads .npy volumes only")
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty)
        self.expect(merge_slabs.main, ["--dir", empty], "no slab_*.json files")
        s = os.path.join(self.dir, "s")
        code, _, err = call(slab_label.main, base + ["--threshold", "0.5", "--slabs", "3", "--index", "2"])
        self.assertEqual(code, 0, err)
        self.expect(merge_slabs.main, ["--dir", s], "slabs missing")
        code, _, err = call(slab_label.main, base + ["--threshold", "0.7", "--slabs", "3", "--index", "1"])
        self.assertEqual(code, 0, err)
        self.expect(merge_slabs.main, ["--dir", s], "use one output folder per chunked run")


class TestChunked(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.foam = os.path.join(cls.dir, "foam.npy")
        np.save(cls.foam, make_data.make_volume(48, 11, volume_fraction=0.3))
        cls.u = os.path.join(cls.dir, "u.npy")
        np.save(cls.u, u_volume())
        cls.runs = 0

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def whole(self, image, opts):
        argv = ["--image", image, "--out", os.path.join(self.dir, "whole")] + opts
        code, out, err = call(analyze.main, argv)
        self.assertEqual(code, 0, err)
        return json.loads(out)

    def chunked(self, image, opts, slabs):
        TestChunked.runs += 1
        folder = os.path.join(self.dir, "run%d" % self.runs)
        for i in range(1, slabs + 1):
            code, _, err = call(slab_label.main, ["--image", image, "--out", folder, "--slabs", str(slabs),
                                                  "--index", str(i)] + opts)
            self.assertEqual(code, 0, err)
        self.check_labels_unique(folder, slabs)
        code, out, err = call(merge_slabs.main, ["--dir", folder, "--slabs", str(slabs), "--write-labels"])
        self.assertEqual(code, 0, err)
        return json.loads(out)

    def check_labels_unique(self, folder, slabs):
        """Labels of different slabs never collide: slab labels lie in
        (offset, offset + slab voxels] and the offsets tile the volume."""
        seen = set()
        for i in range(1, slabs + 1):
            with open(os.path.join(folder, "slab_%04d.json" % i)) as f:
                meta = json.load(f)
            lab = np.load(os.path.join(folder, "slab_%04d_labels.npy" % i))
            self.assertEqual(meta["offset"], meta["start"] * lab[0].size)
            used = set(np.unique(lab).tolist()) - {0}
            if used:
                self.assertGreater(min(used), meta["offset"])
                self.assertLessEqual(max(used), meta["offset"] + lab.size)
            self.assertFalse(used & seen)
            seen |= used

    def assert_same(self, whole, merged, context):
        self.assertEqual(merged["components"], whole["components"], context)
        self.assertEqual(read_sizes_csv(merged["sizes_file"]), read_sizes_csv(whole["sizes_file"]),
                         context)
        self.assertTrue(np.array_equal(np.load(merged["labels_file"]), np.load(whole["labels_file"])),
                        context)
        for key in ("max_size", "foreground_voxels", "foreground_fraction", "mean_size", "shape"):
            self.assertEqual(merged[key], whole[key], (context, key))

    def test_foam_volume_all_filters_and_slab_counts(self):
        for opts in (["--filter", "median", "--size", "5", "--threshold", "0.45"],
                     ["--filter", "median", "--size", "4", "--threshold", "0.45"],
                     ["--filter", "gaussian", "--sigma", "1.5", "--threshold", "0.4"],
                     ["--filter", "none", "--threshold", "0.5"]):
            whole = self.whole(self.foam, opts)
            lab = np.load(whole["labels_file"])
            for slabs in (1, 2, 3, 5):
                # the data must have components crossing every slab border
                for i in range(1, slabs):
                    z = i * 48 // slabs
                    crossing = set(np.unique(lab[z - 1])) & set(np.unique(lab[z])) - {0}
                    self.assertTrue(crossing, (opts, slabs, z))
                self.assert_same(whole, self.chunked(self.foam, opts, slabs), (opts, slabs))

    def test_u_shape_joined_only_in_last_slab(self):
        opts = ["--threshold", "0.5"]
        whole = self.whole(self.u, opts)
        self.assertEqual(whole["components"], 3)
        for slabs in (1, 2, 3, 5, 7):
            self.assert_same(whole, self.chunked(self.u, opts, slabs), slabs)

    def test_2d_image_in_slabs(self):
        import skimage.data
        path = os.path.join(self.dir, "coins.npy")
        np.save(path, skimage.data.coins())
        opts = ["--filter", "median", "--size", "3", "--threshold", "110"]
        whole = self.whole(path, opts)
        self.assert_same(whole, self.chunked(path, opts, 4), "coins")

    def test_array_job_environment_and_result_file(self):
        """Tasks 1,3,5 of an array 1-5:2 are slabs 1..3; real processes."""
        folder = os.path.join(self.dir, "array")
        opts = ["--image", self.foam, "--filter", "gaussian", "--sigma", "1", "--threshold", "0.5",
                "--out", folder]
        for tid in (1, 3, 5):
            env = clean_env(SGE_TASK_ID=tid, SGE_TASK_FIRST=1, SGE_TASK_LAST=5, SGE_TASK_STEPSIZE=2)
            r = run_script("slab_label.py", opts, env)
            self.assertEqual(r.returncode, 0, r.stderr)
            meta = json.loads(r.stdout)
            self.assertEqual((meta["index"], meta["slabs"]), ((tid + 1) // 2, 3))
        result = os.path.join(self.dir, "merged.json")
        r = run_script("merge_slabs.py", ["--dir", folder], clean_env(CORRAL_RESULT=result))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(result) as f:
            merged = json.load(f)
        lab, n = direct_labels(np.load(self.foam), "gaussian", sigma=1, threshold=0.5)
        self.assertEqual(merged["components"], n)
        self.assertEqual(sorted(read_sizes_csv(merged["sizes_file"])), sorted(np.bincount(lab.ravel())[1:]))


def main():
    t0 = time.time()
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(res.failures) + len(res.errors)
    print("total time %.1f s" % (time.time() - t0))
    print("imaging: %d passed, %d failed" % (res.testsRun - failed, failed))
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
