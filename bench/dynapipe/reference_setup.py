"""Shared setup for running the reference DynaPipe (awslabs/optimizing-multitask-training-
through-dynamic-pipelines, the code of chenyu-jiang/DynaPipe) as a CPU peer, as planners.md
§4.2 says: Debian's /usr/bin/python3 with python3-numpy, -scipy, -sklearn and -pybind11
(apt-get install python3-numpy python3-scipy python3-sklearn python3-pybind11 pybind11-dev
python3-dev), its `dynapipe/` package extracted from the fetched mirror with git archive,
stub modules for `elkai` (LKH TSP, used only to order encoder-decoder samples) and `prtpy`
(Karmarkar-Karp, used only for dp_size > 1), and its pybind11 DP built by `make` in
dynapipe/data_opt (the reference's optimizer module runs that make itself on import).

Used by reference_simulator.py and reference_planner.py; nothing of the reference is
copied into this repository.
"""
import os
import subprocess
import sys
import tarfile
import io

MIRROR = "/work/.mirror/awslabs+optimizing-multitask-training-through-dynamic-pipelines/repo"

_STUBS = {
    "elkai.py": '"""Stub (bench/dynapipe/reference_setup.py): LKH is not packaged for Debian."""\n'
                "def solve_int_matrix(*args, **kwargs):\n"
                "    raise NotImplementedError('elkai stub: the TSP sample order (encoder-decoder models) is not available')\n",
    "prtpy.py": '"""Stub (bench/dynapipe/reference_setup.py): only used for dp_size > 1."""\n'
                "class partitioning:\n    kk = None\n\n"
                "def partition(*args, **kwargs):\n"
                "    raise NotImplementedError('prtpy stub: data-parallel splitting (dp_size > 1) is not available')\n",
}


def extract(dest, mirror=MIRROR):
    """`git archive HEAD dynapipe` of the mirror, extracted under dest (once); returns dest."""
    if not os.path.isdir(os.path.join(dest, "dynapipe")):
        os.makedirs(dest, exist_ok=True)
        tar = subprocess.run(["git", "-C", mirror, "archive", "HEAD", "dynapipe"], check=True,
                             capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            t.extractall(dest)
    return dest


def reference_dir(arg=None):
    """The reference's folder: the one given (holding dynapipe/), else extracted from the
    mirror to $TMPDIR/dynaref."""
    if arg:
        return arg
    return extract(os.path.join(os.environ.get("TMPDIR", "/tmp"), "dynaref"))


def add_to_path(ref_dir, planner=False):
    """Make `import dynapipe` load the reference. planner=True also writes the stubs and
    builds the DP extension with Debian's python3 (the reference's Makefile calls
    `python3 -m pybind11` and `python3-config`, so /usr/bin goes first on PATH)."""
    if not os.path.isdir(os.path.join(ref_dir, "dynapipe")):
        sys.exit("no dynapipe/ package under %s (extract the reference first)" % ref_dir)
    if planner:
        stubs = os.path.join(ref_dir, "stubs")
        os.makedirs(stubs, exist_ok=True)
        for name, text in _STUBS.items():
            with open(os.path.join(stubs, name), "w") as f:
                f.write(text)
        sys.path.insert(0, stubs)
        os.environ["PATH"] = "/usr/bin:" + os.environ.get("PATH", "")
        subprocess.run(["make", "-s", "-C", os.path.join(ref_dir, "dynapipe", "data_opt")], check=True,
                       stdout=subprocess.DEVNULL)
    sys.path.insert(0, ref_dir)


def one_thread():
    """One BLAS/OpenMP thread for this process and its children (set before numpy loads)."""
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = "1"
