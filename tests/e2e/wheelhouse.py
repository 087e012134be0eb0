"""A local folder of wheels for the install button's end-to-end test, without the network: every distribution
installed in a ``pip install --target`` folder (MindFlow's ``.deps/py3.X-…`` for OBS's Python, which the e2e fixture
has filled) packed back into a wheel, plus a ``requirements.txt`` pinning each with the hash of that wheel.

pip then installs them with its usual hash checking (``--require-hashes`` is implied by the hashes) from
``PIP_NO_INDEX=1 PIP_FIND_LINKS=<folder>`` in the environment. Each wheel holds exactly the files its ``RECORD``
lists (a fresh ``RECORD`` with their hashes), its ``WHEEL`` file's tags name it, files are stored uncompressed
(fast; the test only reads them once).
"""

from __future__ import annotations

import base64
import csv
import email.parser
import hashlib
import io
import zipfile
from pathlib import Path

SKIP = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def pack_distribution(target: Path, dist_info: Path, out_dir: Path) -> tuple[str, str, Path]:
    """One installed distribution → a wheel in ``out_dir``. Returns ``(name, version, wheel path)``."""
    meta = email.parser.Parser().parsestr((dist_info / "METADATA").read_text(encoding="utf-8"))
    name, version = meta["Name"], meta["Version"]
    tags = [line.split(":", 1)[1].strip() for line in (dist_info / "WHEEL").read_text(encoding="utf-8").splitlines()
            if line.startswith("Tag:")]
    files = []
    for row in csv.reader(io.StringIO((dist_info / "RECORD").read_text(encoding="utf-8"))):
        if not row or row[0].startswith(".."):
            continue
        rel = row[0]
        if Path(rel).parent == Path(dist_info.name) and Path(rel).name in SKIP:
            continue
        if (target / rel).is_file() and "__pycache__" not in rel:
            files.append(rel)
    parts = [sorted({t.split("-")[i] for t in tags}) for i in range(3)]     # py2.py3-none-any from two Tag lines
    wheel = out_dir / f"{name.replace('-', '_')}-{version}-{'-'.join('.'.join(p) for p in parts)}.whl"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as z:
        for rel in files:
            data = (target / rel).read_bytes()
            z.writestr(rel, data)
            writer.writerow([rel, _hash(data), len(data)])
        record_name = f"{dist_info.name}/RECORD"
        writer.writerow([record_name, "", ""])
        z.writestr(record_name, record.getvalue())
    return name, version, wheel


def build(target: Path, out_dir: Path) -> Path:
    """Every distribution in ``target`` → a wheel in ``out_dir``; returns the ``requirements.txt`` written there
    (``name==version --hash=sha256:…`` per wheel)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for dist_info in sorted(target.glob("*.dist-info")):
        name, version, wheel = pack_distribution(target, dist_info, out_dir)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    if not lines:
        raise FileNotFoundError(f"no installed distributions in {target}")
    req = out_dir / "requirements.txt"
    req.write_text("# the wheels packed from " + str(target) + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return req
