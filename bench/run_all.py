"""Run every benchmark on this machine and print one JSON object per benchmark (used by `make bench`).

Edge and agent benchmarks run on the bundled sample video with the bundled INT8 model (and FP32 for the
INT8-vs-FP32 row); the server benchmark fills SQLite (and PostgreSQL when FARZ_BENCH_POSTGRES_URL is set)
through the real HTTP ingest path; the trust benchmark checks the confusion-corrected composition against
known truth. Ratios are measured side by side in one run: the machine is shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "datasets" / "samples" / "belt-a.mp4"
INT8 = REPO / "models" / "farz-waste.int8.onnx"
FP32 = REPO / "models" / "farz-waste.onnx"


def farz(*args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "farz", *args, "--json"], capture_output=True, text=True, check=True, cwd=REPO).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    events = os.environ.get("FARZ_BENCH_EVENTS", "1000000")
    runs = {
        "edge_int8": ["bench", "edge", "--video", str(SAMPLE), "--model", str(INT8)],
        "edge_fp32": ["bench", "edge", "--video", str(SAMPLE), "--model", str(FP32)],
        "agent": ["bench", "agent", "--video", str(SAMPLE), "--model", str(INT8)],
        "server_sqlite": ["bench", "server", "--events", events],
    }
    if os.environ.get("FARZ_BENCH_POSTGRES_URL"):
        runs["server_postgresql"] = ["bench", "server", "--events", events, "--database-url", os.environ["FARZ_BENCH_POSTGRES_URL"]]
    for name, args in runs.items():
        print(json.dumps({"benchmark": name, **farz(*args)}), flush=True)
    trust = subprocess.run([sys.executable, "-m", "bench.trust", "--json"], capture_output=True, text=True, check=True, cwd=REPO).stdout
    print(json.dumps({"benchmark": "trust", **json.loads(trust)}), flush=True)


if __name__ == "__main__":
    main()
