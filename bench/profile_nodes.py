"""Where a model's time goes, node by node: `python bench/profile_nodes.py MODEL.onnx [MODEL.onnx …]`.

ONNX Runtime's own profiler (one thread, the first held-out scene of ``build/heldout`` letterboxed as the
detector does, 100 runs after a warm-up); prints, per model, the slowest nodes and the time per operator
type, in µs per run. The profiler adds its own overhead: compare models with each other, not with the
timings of ``farz train compare``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.evaluate import load_yolo_split  # noqa: E402
from vision import DetectorSettings, OnnxDetector  # noqa: E402


def profile(model: Path, frame_path: Path, runs: int = 100) -> tuple[dict[str, float], dict[str, str]]:
    """µs per run of every node, and each node's operator type."""
    import onnxruntime as ort

    detector = OnnxDetector(model, DetectorSettings(threads=1))
    blob, _ = detector.preprocess(cv2.imread(str(frame_path), cv2.IMREAD_COLOR))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "farz-profile")
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: blob}
    session.run(None, feed)
    for _ in range(runs):
        session.run(None, feed)
    trace = session.end_profiling()
    events = json.loads(Path(trace).read_text())
    os.remove(trace)
    per_node: dict[str, float] = collections.Counter()
    op_of: dict[str, str] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            node = event["name"].removesuffix("_kernel_time")
            per_node[node] += event["dur"] / (runs + 1)
            op_of[node] = event["args"]["op_name"]
    return dict(per_node), op_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=15, help="how many of the slowest nodes to print")
    args = parser.parse_args()
    frame = load_yolo_split(REPO / "build" / "heldout", "heldout").images[0]
    for model in args.models:
        per_node, op_of = profile(model, frame)
        per_op: dict[str, float] = collections.Counter()
        for node, us in per_node.items():
            per_op[op_of[node]] += us
        print(f"{model}: {sum(per_node.values()):.0f} µs per run (profiled)")
        for node, us in sorted(per_node.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"  {us:8.1f}  {op_of[node]:<16} {node}")
        print("  by operator:")
        for op, us in sorted(per_op.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"  {us:8.1f}  {op}")


if __name__ == "__main__":
    main()
