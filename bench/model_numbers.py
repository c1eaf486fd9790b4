"""The figures of the model card, measured in one run: `python bench/model_numbers.py [RUN_DIR] [--previous OLD.int8.onnx]`.

FP32 vs INT8 on held-out belt scenes and on TrashNet's real held-out photos (mAP, per class), speed
timed side by side at 320 (and, given the training run folder with its ``weights/best.pt``, at 416/640:
the same weights exported larger), count error on the sample videos, and with ``--previous`` the speed of
the shipped INT8 file against an earlier one, side by side. Needs ``build/heldout`` and
``build/heldout-photos`` (the card's Reproduce section makes them). Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.compare import side_by_side_ms, video_count_error  # noqa: E402
from training.evaluate import evaluate, load_yolo_split  # noqa: E402
from training.export import export_onnx  # noqa: E402
from training.taxonomy import load_taxonomy  # noqa: E402


def rect_vs_square(model: Path, video: Path, frames: int = 60) -> dict[str, object]:
    """INT8 ms per frame (session.run, 1 thread, alternating) on a 16:9 sample padded to a stride multiple
    (what a dynamic-input model runs) and padded to a square (what a fixed-input export must run)."""
    import statistics
    import time

    from bench.edge import load_frames
    from vision import DetectorSettings, OnnxDetector
    from vision.geometry import letterbox

    detector = OnnxDetector(model, DetectorSettings(threads=1))
    times: dict[str, list[float]] = {"rect": [], "square": []}
    shapes: dict[str, list[int]] = {}
    for frame in load_frames(video, frames):
        for name, stride in (("rect", detector.info.stride), ("square", 0)):
            blob = detector.to_input(letterbox(frame, detector.info.imgsz, stride)[0])
            shapes[name] = list(blob.shape[1:3] if detector.info.uint8_input else blob.shape[2:])
            t0 = time.perf_counter()
            detector.infer(blob)
            times[name].append((time.perf_counter() - t0) * 1000)
    return {"rect_ms": round(statistics.median(times["rect"]), 3), "square_ms": round(statistics.median(times["square"]), 3), **shapes}


def main(run: Path | None, previous: Path | None) -> None:
    fp32, int8 = REPO / "models" / "farz-waste.onnx", REPO / "models" / "farz-waste.int8.onnx"
    heldout, photos = REPO / "build" / "heldout", REPO / "build" / "heldout-photos"
    out: dict[str, object] = {}
    for name, model in (("fp32", fp32), ("int8", int8)):
        out[f"{name}_heldout"] = evaluate(model, heldout, "heldout", threads=1, progress=False)
        out[f"{name}_photos"] = evaluate(model, photos, "val", threads=1, progress=False)
    images = load_yolo_split(heldout, "heldout").images[:60]
    for threads in (1, 2):
        ms_fp32, ms_int8 = side_by_side_ms(fp32, int8, images, threads)
        out[f"ms_threads{threads}"] = {"fp32": round(ms_fp32, 3), "int8": round(ms_int8, 3), "speedup": round(ms_fp32 / ms_int8, 3)}
    if previous is not None:
        ms_old, ms_new = side_by_side_ms(previous, int8, images, 1)
        out["int8_vs_previous"] = {"previous": round(ms_old, 3), "int8": round(ms_new, 3), "speedup": round(ms_old / ms_new, 3)}
    sizes = {}
    tax = load_taxonomy()
    for size in (416, 640) if run is not None else ():
        bigger = export_onnx(run / "weights" / "best.pt", Path(f"/tmp/farz-size-{size}/model.onnx"), tax, "farz-waste-n", size)
        ms_320, ms_big = side_by_side_ms(fp32, bigger, images, 1)
        quality = evaluate(bigger, heldout, "heldout", threads=1, progress=False)
        sizes[str(size)] = {"ms_fp32": round(ms_big, 3), "ms_fp32_at_320": round(ms_320, 3), "map50": quality["map50"]}
    out["input_sizes"] = sizes or "skipped: no run folder with weights/best.pt given"
    out["rect_vs_square"] = rect_vs_square(int8, REPO / "datasets" / "samples" / "belt-a.mp4")
    videos = sorted((REPO / "datasets" / "samples").glob("*.mp4"))
    out["count_error"] = {"fp32": video_count_error(fp32, videos), "int8": video_count_error(int8, videos)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?", default=None, help="training run folder (for the 416/640 exports)")
    parser.add_argument("--previous", type=Path, default=None, help="an earlier INT8 file to time against the shipped one")
    args = parser.parse_args()
    main(args.run, args.previous)
