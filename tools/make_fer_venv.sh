#!/usr/bin/env bash
# Create .venv-fer/ (ignored by git via .venv-*/): the `fer` package as the peer of MindFlow's speed benchmarks
# (tools/fer_peer.py runs in it). Only what fer needs to import and run FER(mtcnn=False) is installed:
#   fer==25.10.3 without its declared dependencies (those pull opencv-contrib, pandas, matplotlib, moviepy and
#   facenet-pytorch → torch, none of which fer.fer needs for Haar detection + its Keras/TFLite model);
#   tensorflow-cpu==2.15.1 + numpy<2      the Keras model (and tf.lite for fer's default quantized model);
#   opencv-python-headless<5              fer only uses cv2.data, CascadeClassifier, cvtColor, resize;
#   requests, pillow                      imported at module level by fer/fer.py and fer/utils.py;
#   setuptools<81                         fer/fer.py imports pkg_resources at module level.
# Usage: bash tools/make_fer_venv.sh [VENV_DIR]      (default .venv-fer; PYTHON=python3.11 to pick the interpreter)
# Needs PyPI and Python 3.9–3.11 (tensorflow-cpu 2.15.1 has no wheels for 3.12+). About 600 MB on disk.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-fer}"
PY="${PYTHON:-python3}"

if ! "$PY" -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 11) else 1)'; then
    echo "error: $("$PY" --version 2>&1) cannot install tensorflow-cpu==2.15.1; set PYTHON to a Python 3.9–3.11" >&2
    exit 1
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install "tensorflow-cpu==2.15.1" "numpy<2" "opencv-python-headless<5" \
    requests pillow "setuptools<81"
"$VENV/bin/python" -m pip install --no-deps "fer==25.10.3"

# Smoke test: import, build both fer back-ends, run one blank frame through each.
TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" - <<'EOF'
import numpy as np
from fer.fer import FER
frame = np.full((240, 320, 3), 128, np.uint8)
for tflite in (False, True):
    FER(mtcnn=False, use_tflite=tflite).detect_emotions(frame)
print("fer venv ok")
EOF
echo "created $VENV — run: $VENV/bin/python tools/fer_peer.py --frames FILE.npy --threads 2 --seconds 10"
