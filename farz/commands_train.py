"""``farz datasets …`` and ``farz train …``: data preparation, fit, export, quantize, eval, compare."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from farz.commands_count import add_classifier_argument, classifier_path
from farz.parsing import SubParsers, add_command


def register(sub: SubParsers) -> None:
    """Add ``datasets`` and ``train`` to the top-level parser."""
    ds = add_command(sub, "datasets", help="cut-outs from photos and synthetic conveyor scenes")
    ds_sub = ds.add_subparsers(dest="datasets", metavar="STEP", required=True)
    cut = add_command(ds_sub, "cutouts", help="cut items out of photos on a plain board (report + contact sheets)")
    cut.add_argument("--source", type=Path, default=Path("../shared/datasets/trashnet"), help="folder of <class>/*.jpg photos")
    cut.add_argument("--out", type=Path, default=Path("build/cutouts"), help="output folder")
    cut.add_argument("--workers", type=int, default=2, help="processes cutting at a time (default: %(default)s)")
    cut.set_defaults(handler=run_cutouts)
    pho = add_command(
        ds_sub,
        "photos",
        help="the real photos behind one split's cut-outs as a YOLO dataset (one box each): the un-composited held-out check",
    )
    pho.add_argument("--source", type=Path, default=Path("../shared/datasets/trashnet"), help="folder of <class>/*.jpg photos")
    pho.add_argument("--cutouts", type=Path, default=Path("build/cutouts"), help="output of `farz datasets cutouts`")
    pho.add_argument("--split", choices=["train", "val", "test"], default="test", help="which split's photos (default: %(default)s)")
    pho.add_argument("--out", type=Path, default=Path("build/heldout-photos"), help="dataset folder to write (default: %(default)s)")
    pho.set_defaults(handler=run_photos)
    pack = add_command(
        ds_sub,
        "pack",
        help="a compact copy of the train/val cut-outs (WebP) and their photos for another machine (the GPU one); test stays here",
    )
    pack.add_argument("--cutouts", type=Path, default=Path("build/cutouts"), help="output of `farz datasets cutouts`")
    pack.add_argument("--source", type=Path, default=Path("../shared/datasets/trashnet"), help="folder of <class>/*.jpg photos")
    pack.add_argument("--no-photos", action="store_true", help="leave the real photos out (only the cut-outs)")
    pack.add_argument("--photo-side", type=int, default=384, help="long side of the packed photos, px")
    pack.add_argument(
        "--class-photos",
        action="store_true",
        help="also every train/val photo of --source as OUT/classes/<class>/*.webp (the classifier's)",
    )
    pack.add_argument("--out", type=Path, default=Path(".gpu/cutouts"), help="folder to write (default: %(default)s)")
    pack.set_defaults(handler=run_pack)
    syn = add_command(ds_sub, "synth", help="render belt training images (YOLO labels) or belt videos with truth")
    syn.add_argument("--cutouts", type=Path, default=Path("build/cutouts"), help="output of `farz datasets cutouts` (default: %(default)s)")
    syn.add_argument("--out", type=Path, required=True, help="dataset folder (images) or output .mp4 (--video)")
    syn.add_argument("--train", type=int, default=2400, help="training images to render")
    syn.add_argument("--val", type=int, default=300, help="validation images to render")
    syn.add_argument("--video", action="store_true", help="render a belt video with NAME.truth.json and NAME.yaml instead")
    syn.add_argument("--split", default="test", help="cut-out split a video uses (default: test, never trained on)")
    syn.add_argument("--seconds", type=float, default=20.0, help="video length, s (--video)")
    syn.add_argument(
        "--direction", choices=["right", "left", "down", "up"], default="right", help="the belt's motion in the picture (--video)"
    )
    syn.add_argument("--speed", type=float, default=10.0, help="belt speed, px per frame")
    syn.add_argument("--rate", type=float, default=1.2, help="items per second (--video; 0: an empty belt)")
    syn.add_argument("--seed", type=int, default=0, help="random seed: the same seed renders the same scenes")
    syn.add_argument("--size", default="640x360", metavar="WxH", help="video frame size (--video)")
    syn.add_argument("--fps", type=int, default=15, help="video frame rate (--video)")
    syn.add_argument("--scale", default="0.2,0.42", metavar="MIN,MAX", help="item size as a fraction of the short side (--video)")
    syn.add_argument(
        "--closeup",
        type=float,
        default=0.0,
        help="fraction of training scenes rendered as close-ups (1-3 items at 45-95%% of the short side)",
    )
    syn.add_argument(
        "--crowded",
        type=float,
        default=0.0,
        help="fraction of the other training scenes rendered as loaded belts: 6-16 items in touching, overlapping piles, "
        "with rollers, joint clips and stains",
    )
    syn.add_argument(
        "--camera",
        type=float,
        default=0.0,
        help="fraction of the other training scenes seen by a tilted wide-angle camera: perspective, the belt's frame and the "
        "floor beyond it, cleated, ribbed and light belts",
    )
    syn.add_argument(
        "--two-tone",
        type=float,
        default=0.0,
        help="fraction of items drawn in two tones (one side of a line through them darker or lighter: a fold, a label), "
        "each still labelled as one item",
    )
    syn.add_argument(
        "--poor-camera",
        type=float,
        default=0.0,
        help="fraction of training scenes as a poorer camera or a harder hall gives them: dim or over-exposed, noisy, out of "
        "focus, under lamps of another colour, compressed hard",
    )
    syn.add_argument(
        "--flat",
        type=float,
        default=0.0,
        help="fraction of items that are flat and straight-edged (a sheet, a flattened carton, a tray), square to the belt "
        "half the time, in place of a cut-out: for an item detector (they take the class of the cut-out they replace)",
    )
    syn.add_argument(
        "--square",
        type=float,
        default=0.0,
        help="fraction of the other items lying as photographed, square to the picture (the rest turned at random)",
    )
    syn.add_argument(
        "--min-visible",
        type=float,
        default=0.35,
        help="label an item only when this fraction of it is in sight (a sliver under another item is background)",
    )
    syn.add_argument("--shards", type=int, default=1, help="independent render streams per split (1: the single stream of older recipes)")
    syn.add_argument("--workers", type=int, default=1, help="processes rendering shards at a time (the scenes do not depend on it)")
    syn.add_argument(
        "--photos",
        action="store_true",
        help="also put the real photos behind each split's cut-outs (one box each, from --source) into that split",
    )
    syn.add_argument("--source", type=Path, default=Path("../shared/datasets/trashnet"), help="folder of <class>/*.jpg photos (--photos)")
    syn.add_argument("--count-as", choices=["in", "out"], default="in", help="draw the video's line so the belt's motion counts as this")
    syn.set_defaults(handler=run_synth)
    cam = add_command(
        ds_sub,
        "camera-belt",
        help="render a belt video as a tilted wide-angle camera sees it, with NAME.truth.json and NAME.yaml: a renderer unlike "
        "`synth`'s (perspective, lens, 30 frames/s, cleated belts, spinning and loosely cut items), for checking counting",
    )
    cam.add_argument("--cutouts", type=Path, default=Path("build/cutouts"), help="output of `farz datasets cutouts` (default: %(default)s)")
    cam.add_argument("--split", default="test", help="cut-out split (default: test, never trained on)")
    cam.add_argument("--out", type=Path, required=True, help="output .mp4")
    cam.add_argument("--direction", choices=["down", "up", "left", "right"], default="down", help="the belt's motion in the picture")
    cam.add_argument("--speed", type=float, default=5.0, help="belt speed at the picture's centre, px per frame")
    cam.add_argument("--rate", type=float, default=1.0, help="items per second (0: an empty belt)")
    cam.add_argument("--seconds", type=float, default=20.0, help="video length, s")
    cam.add_argument("--size", default="640x480", metavar="WxH", help="frame size")
    cam.add_argument("--fps", type=int, default=30, help="frame rate")
    cam.add_argument("--tilt", type=float, default=0.35, help="0: straight above; 0.5: the far edge sees 1.5x the near edge's belt width")
    cam.add_argument("--distortion", type=float, default=0.08, help="the lens' barrel term (0: none)")
    cam.add_argument(
        "--surface", choices=["plain", "ribbed", "cleated"], default="cleated", help="the belt's surface (default: %(default)s)"
    )
    cam.add_argument("--halo", type=float, default=0.4, help="share of items cut out loosely, a rim of the photo's board round them")
    cam.add_argument("--spin", type=float, default=1.2, help="largest turn of an item per frame, degrees")
    cam.add_argument("--scale", default="0.16,0.32", metavar="MIN,MAX", help="item size as a fraction of the short side at the centre")
    cam.add_argument("--seed", type=int, default=0, help="random seed: the same seed renders the same video")
    cam.set_defaults(handler=run_camera_belt)

    deg = add_command(
        ds_sub,
        "degrade",
        help="copies of belt videos with truth, each made worse one way (dim light, noise, blur, compression, lamps, "
        "over-exposure, half the frame rate, a larger frame), to judge counting with `farz train count-eval`",
        description="Writes OUT/<degradation>/NAME.mp4 with NAME.yaml and NAME.truth.json for every video given. "
        "Degradations: " + "; ".join(f"{n}: {d}" for n, d in _degradation_help().items()) + ".",
    )
    deg.add_argument("--videos", type=Path, nargs="+", required=True, help="videos or folders of them (with NAME.truth.json to judge)")
    deg.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the degraded copies, one subfolder per kind")
    deg.add_argument("--kinds", default="all", metavar="K,K,...", help="which degradations, comma-separated (default: all)")
    deg.add_argument("--seed", type=int, default=0, help="seed of the noise")
    deg.set_defaults(handler=run_degrade)

    tr = add_command(sub, "train", help="fit, export, quantize, evaluate and compare detectors")
    tr_sub = tr.add_subparsers(dest="train", metavar="STEP", required=True)
    prep = add_command(
        tr_sub,
        "prepare",
        help="merge YOLO / COCO datasets or labelled photo folders into one YOLO dataset in the taxonomy",
        description="Maps labels onto datasets/taxonomy.yaml, keeps near-duplicate images (perceptual hash) in one split, "
        "splits 80/10/10 deterministically and reports images and instances per class and split.",
    )
    prep.add_argument("sources", type=Path, nargs="+", help="data.yaml or YOLO folder, COCO .json, or a folder of <label>/ photos")
    prep.add_argument("--out", type=Path, required=True, help="YOLO dataset folder to write")
    prep.add_argument("--ignore-unmapped", action="store_true", help="drop boxes whose label has no taxonomy class")
    prep.add_argument("--max-distance", type=int, default=6, help="dHash bits within which two images are near-duplicates")
    prep.add_argument("--json", action="store_true", help="print the merge report as one JSON object")
    prep.set_defaults(handler=run_prepare)
    fit = add_command(tr_sub, "fit", help="train a detector (Ultralytics, offline) into one run folder")
    fit.add_argument(
        "--config", type=Path, default=Path("training/configs/default.yaml"), help="training recipe YAML (default: %(default)s)"
    )
    fit.add_argument("--run", type=Path, default=None, help="run folder (default: runs/<name>)")
    fit.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    fit.add_argument("--hours", type=float, default=None, help="override the config's time budget")
    fit.add_argument("--imgsz", type=int, default=None, help="override the config's input size")
    fit.add_argument("--data", type=Path, default=None, help="use this rendered dataset folder instead of rendering one")
    fit.set_defaults(handler=run_fit)
    exp = add_command(tr_sub, "export", help="PyTorch weights -> ONNX with farz metadata")
    exp.add_argument("weights", type=Path, help="a run's .pt (e.g. runs/NAME/weights/best.pt)")
    exp.add_argument("--out", type=Path, required=True, help="the .onnx to write (FP32)")
    exp.add_argument("--imgsz", type=int, default=320, help="input size, px (default: %(default)s)")
    exp.add_argument("--name", default="farz-waste-n", help="model name in its metadata (default: %(default)s)")
    exp.add_argument("--data-hash", default="", help="the training data's hash for the metadata (a run's data_hash.txt)")
    exp.add_argument(
        "--static",
        action="store_true",
        help="fixed imgsz x imgsz input (default: dynamic height/width, so a 16:9 frame runs at 320x192, not 320x320)",
    )
    exp.set_defaults(handler=run_export)
    qua = add_command(
        tr_sub,
        "quantize",
        help="static INT8 QDQ calibrated on training data; says which nodes stay FP32 (detectors and classifiers)",
        description="A detector is calibrated on --calib images; a classifier (task classify) on crops of the training photos "
        "(--source) and belt crops of the training cut-outs (--cutouts).",
    )
    qua.add_argument("model", type=Path, help="FP32 ONNX detector or classifier")
    qua.add_argument("--out", type=Path, required=True, help="the INT8 .onnx to write")
    qua.add_argument("--calib", type=Path, default=None, help="detector: folder of calibration images (training split)")
    qua.add_argument("--source", type=Path, default=Path("../shared/datasets/trashnet"), help="classifier: the training photos")
    qua.add_argument("--cutouts", type=Path, default=Path("build/cutouts"), help="classifier: the cut-outs for belt crops")
    qua.add_argument("--images", type=int, default=128, help="how many calibration images")
    qua.add_argument(
        "--method", choices=["minmax", "entropy", "percentile"], default="minmax", help="calibration method (default: %(default)s)"
    )
    qua.add_argument(
        "--head-convs", choices=["fp32", "int8"], default="int8", help="precision of the last conv of each detect-head branch (the logits)"
    )
    qua.add_argument("--attention", choices=["fp32", "int8"], default="int8", help="precision of the attention blocks")
    qua.add_argument(
        "--weights", choices=["per-tensor", "per-channel"], default="per-channel", help="one weight scale per output channel or per tensor"
    )
    qua.add_argument(
        "--first-conv",
        choices=["fp32", "int8"],
        default="fp32",
        help="precision of the convolution that reads the image (3 channels: slower in INT8 on x86, so FP32 by default)",
    )
    qua.add_argument(
        "--input",
        choices=["uint8", "float"],
        default="uint8",
        help="uint8: the model reads the letterboxed BGR frame (1, H, W, 3) as it is "
        "(less work per frame, the same outputs to float rounding); "
        "float: RGB (1, 3, H, W) in 0..1 like the FP32 model, for tools that feed that",
    )
    qua.set_defaults(handler=run_quantize)
    conv = add_command(
        tr_sub,
        "convert-input",
        help="switch an INT8 model between uint8 BGR (1, H, W, 3) and float RGB (1, 3, H, W) input; the same outputs "
        "(bit for bit with an INT8 first conv, to float rounding with an FP32 one)",
    )
    conv.add_argument("model", type=Path, help="INT8 ONNX model")
    conv.add_argument("--to", choices=["uint8", "float"], required=True, help="the input layout to give it")
    conv.add_argument("--out", type=Path, required=True, help="the .onnx to write")
    conv.set_defaults(handler=run_convert_input)
    rec = add_command(
        tr_sub,
        "recover",
        help="rebuild trainable PyTorch weights (.pt) from an exported FP32 ONNX file, to fine-tune a shipped model",
        description="Copies every convolution's weights from the ONNX file into the architecture and gives each folded "
        "BatchNorm back as the identity on the calibration images; checks that the rebuilt model's outputs equal the file's.",
    )
    rec.add_argument("model", type=Path, help="FP32 ONNX file exported by `farz train export`")
    rec.add_argument("--out", type=Path, required=True, help="the .pt to write (use it as a config's `init:`)")
    rec.add_argument("--calib", type=Path, required=True, help="folder of training images to measure BatchNorm statistics on")
    rec.add_argument("--images", type=int, default=128, help="how many calibration images")
    rec.add_argument("--architecture", default="training/configs/yolo26n-relu.yaml", help="the model definition the file was trained from")
    rec.set_defaults(handler=run_recover)
    avg = add_command(
        tr_sub,
        "average",
        help="one detector or classifier whose weights are the weighted mean of several runs from one starting point (a weight soup)",
        description="Averages every weight and BatchNorm statistic of runs fine-tuned from the same init (architecture "
        "and tensor shapes must match; classifiers must name the same classes). The mean keeps much of what each run "
        "learned; a robustness run averaged with the run it started from often keeps most of its gain and less of its "
        "side effects. Export a detector with `farz train export`, a classifier with `farz train classify-export`, and "
        "judge it like any run (`farz train compare`, `classify-eval`, `count-eval`).",
    )
    avg.add_argument(
        "checkpoints",
        type=Path,
        nargs="+",
        help="two or more detector runs' weights/best.pt, or classifier runs' best.pt (init.pt: where a run from an exported file started)",
    )
    avg.add_argument("--out", type=Path, required=True, help="the .pt to write")
    avg.add_argument("--weights", default=None, help="each checkpoint's share, comma-separated (scaled to sum to 1; default: equal)")
    avg.set_defaults(handler=run_average)
    ev = add_command(
        tr_sub,
        "eval",
        help="mAP of the shipped two-stage path (or a given detector/classifier) through vision (pycocotools)",
        description="Without --model, evaluates the shipped default exactly as `farz count` runs it: the item detector, then "
        "the material classifier on each box. --classifier none scores the detector's own classes.",
    )
    ev.add_argument("--model", type=Path, default=None, help="ONNX detector (default: the bundled models/farz-waste.int8.onnx)")
    ev.add_argument("--data", type=Path, required=True, help="YOLO dataset folder or its data.yaml")
    ev.add_argument("--split", default="val", help="dataset split (default: %(default)s)")
    ev.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all cores)")
    ev.add_argument("--max-images", type=int, default=0, help="evaluate at most this many images (0: all)")
    ev.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    add_classifier_argument(ev)
    ev.add_argument(
        "--record", action="store_true", help="write mAP50, mAP50-95, per-class AP50 and the data into the model's `metrics` metadata"
    )
    ev.set_defaults(handler=run_eval)
    reg = add_command(tr_sub, "register", help="upload a model and its card to the server's registry (admin or scientist token)")
    reg.add_argument("model", type=Path, help="ONNX detector or classifier with farz metadata")
    reg.add_argument("--server", required=True, metavar="URL", help="server base URL")
    reg.add_argument("--token-file", type=Path, required=True, help="file holding a scientist or admin token")
    reg.add_argument("--metrics", type=Path, default=None, help="JSON from `farz train eval --json` to put in the card")
    reg.set_defaults(handler=run_register)
    pull = add_command(tr_sub, "pull-samples", help="download a site's hard samples as a YOLO dataset ready for labelling")
    pull.add_argument("--site", required=True, help="the site whose hard samples to download")
    pull.add_argument("--out", type=Path, required=True, help="YOLO dataset folder to write")
    pull.add_argument("--server", required=True, metavar="URL", help="server base URL")
    pull.add_argument("--token-file", type=Path, required=True, help="file holding a scientist or admin token")
    pull.set_defaults(handler=run_pull_samples)
    from farz import commands_classify

    commands_classify.register(tr_sub)
    cmp_ = add_command(
        tr_sub,
        "compare",
        help="two detectors side by side, as farz count runs them: mAP, agnostic AP50, recall, ms/frame, counts item by "
        "item, false items on empty belt; which is better on every figure",
        description="Runs detectors A and B the same way on the same data (two-stage with the material classifier, as "
        "`farz count` does): mAP50 and class-agnostic AP50, item recall and boxes per item at the operating point on "
        "--data, inference time measured side by side, counts on --videos (count error, and item by item where the "
        "truth lists each item: twice, missed, no item, wrong way) and false counts on --empty belt videos. "
        "`better` names the model no worse on any figure and better on one, else says which is better on what.",
    )
    cmp_.add_argument("a", type=Path, help="ONNX detector A (e.g. the one devices run today)")
    cmp_.add_argument("b", type=Path, help="ONNX detector B (e.g. the candidate)")
    cmp_.add_argument("--data", type=Path, required=True, help="a YOLO dataset (data.yaml folder) to measure accuracy and time on")
    cmp_.add_argument("--split", default="val", help="dataset split (default: %(default)s)")
    cmp_.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default: %(default)s)")
    cmp_.add_argument("--max-images", type=int, default=0, help="measure at most this many images (0: all)")
    cmp_.add_argument(
        "--videos",
        type=Path,
        nargs="*",
        default=None,
        help="videos with NAME.truth.json, or folders of them (default: the bundled samples)",
    )
    cmp_.add_argument("--empty", type=Path, nargs="*", default=None, help="videos of empty belt, or folders of them: every count is false")
    add_classifier_argument(cmp_)
    cmp_.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    cmp_.set_defaults(handler=run_compare)


def run_cutouts(args: argparse.Namespace) -> int:
    from training.cutouts import make_cutouts
    from training.taxonomy import load_taxonomy

    if not args.source.is_dir():
        raise FileNotFoundError(f"{args.source}: no such folder of photos")
    results = make_cutouts(args.source, args.out, load_taxonomy(), workers=args.workers)
    print(f"{sum(r.accepted for r in results)} of {len(results)} photos gave a cut-out; report: {args.out / 'report.json'}")
    return 0


def run_photos(args: argparse.Namespace) -> int:
    from training.cutouts import write_photo_set
    from training.taxonomy import load_taxonomy

    print(f"wrote {write_photo_set(args.cutouts, args.source, args.out, load_taxonomy().names, args.split)}")
    return 0


def run_pack(args: argparse.Namespace) -> int:
    from training.pack import pack_cutouts
    from training.taxonomy import load_taxonomy

    photos = None if args.no_photos else args.source
    classes = args.source if args.class_photos else None
    pack = pack_cutouts(args.cutouts, photos, args.out, load_taxonomy().names, photo_side=args.photo_side, class_photos=classes)
    extra = f", class photos {pack.class_photos}" if args.class_photos else ""
    print(f"packed {args.out}: cut-outs {pack.cutouts}, photos {pack.photos}{extra}, {pack.bytes / 2**20:.1f} MiB")
    return 0


def _size_and_scale(args: argparse.Namespace) -> tuple[int, int, float, float]:
    """A video's ``--size WxH`` and item ``--scale MIN,MAX``, or a ``UserError`` that shows the shapes."""
    from farz.errors import UserError

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
        min_scale, max_scale = (float(v) for v in args.scale.split(","))
    except ValueError:
        raise UserError(f"--size {args.size!r} / --scale {args.scale!r}: expected WxH (e.g. 640x480) and MIN,MAX (e.g. 0.2,0.42)") from None
    return width, height, min_scale, max_scale


def run_synth(args: argparse.Namespace) -> int:
    from training.synth import VideoSpec, load_cutouts, render_video, write_training_set
    from training.taxonomy import load_taxonomy

    names = load_taxonomy().names
    if args.video:
        from farz.errors import UserError

        width, height, min_scale, max_scale = _size_and_scale(args)
        if args.rate < 0 or args.speed <= 0 or args.seconds <= 0:
            raise UserError(
                f"--rate {args.rate} / --speed {args.speed} / --seconds {args.seconds}: "
                "need a rate >= 0 (0: an empty belt) and a speed and length > 0"
            )
        if not (0 < min_scale <= max_scale < 1) or width < 32 or height < 32:
            raise UserError(f"--size {args.size} / --scale {args.scale}: need a frame of at least 32x32 and 0 < MIN <= MAX < 1")
        spec = VideoSpec(width, height, args.fps, args.seconds, args.direction, args.speed, args.rate, args.seed, min_scale, max_scale)
        cutouts = load_cutouts(args.cutouts, names, args.split)  # after the arguments: a typo costs no loading
        if not cutouts:
            raise FileNotFoundError(f"no cut-outs in {args.cutouts}/{args.split}: run `farz datasets cutouts` first")
        truth = render_video(cutouts, names, spec, args.out, line_in=args.count_as == "in")
        print(json.dumps(truth["counts"]))
    else:
        counts = {"train": args.train, "val": args.val}
        fractions = (args.camera, args.crowded, args.closeup, args.two_tone, args.poor_camera, args.flat, args.square)
        if not (0 < args.min_visible <= 1 and all(0 <= f <= 1 for f in fractions)):
            from farz.errors import UserError

            raise UserError(
                f"--closeup {args.closeup} / --crowded {args.crowded} / --camera {args.camera} / --two-tone {args.two_tone} / "
                f"--poor-camera {args.poor_camera} / --flat {args.flat} / --square {args.square} / "
                f"--min-visible {args.min_visible}: "
                "need fractions in 0-1 (--min-visible above 0)"
            )
        data = write_training_set(
            args.cutouts,
            args.out,
            names,
            counts,
            args.seed,
            args.closeup,
            args.shards,
            args.workers,
            args.crowded,
            args.min_visible,
            args.camera,
            args.two_tone,
            args.poor_camera,
            args.flat,
            args.square,
        )
        if args.photos:
            from training.fit import add_photos

            print(f"real photos added: {add_photos(args.cutouts, args.source, args.out, names, list(counts))}")
        print(data)
    return 0


def run_camera_belt(args: argparse.Namespace) -> int:
    from farz.errors import UserError
    from training.camera_belts import CameraBeltSpec, render_camera_video
    from training.synth import load_cutouts
    from training.taxonomy import load_taxonomy

    width, height, min_scale, max_scale = _size_and_scale(args)
    if args.rate < 0 or args.speed <= 0 or args.seconds <= 0 or args.fps <= 0 or width < 64 or height < 64:
        raise UserError("--rate must be >= 0 (0: an empty belt); --speed, --seconds and --fps > 0; --size at least 64x64")
    try:
        spec = CameraBeltSpec(
            width, height, args.fps, args.seconds, args.direction, args.speed, args.rate, args.tilt, args.distortion,
            args.halo, args.spin, args.surface, min_scale, max_scale, args.seed,
        )  # fmt: skip
    except ValueError as exc:
        raise UserError(f"--tilt {args.tilt} / --distortion {args.distortion} / --scale {args.scale}: {exc}") from None
    names = load_taxonomy().names
    cutouts = [(c.rgba, c.class_id) for c in load_cutouts(args.cutouts, names, args.split)]
    if not cutouts:
        raise FileNotFoundError(f"no cut-outs in {args.cutouts}/{args.split}: run `farz datasets cutouts` first")
    truth = render_camera_video(cutouts, names, spec, args.out)
    print(json.dumps(truth["counts"]))
    return 0


def _degradation_help() -> dict[str, str]:
    from training.degrade import DEGRADATIONS

    return {name: d.description for name, d in DEGRADATIONS.items()}


def run_degrade(args: argparse.Namespace) -> int:
    from farz.errors import UserError
    from training.count_eval import videos_in
    from training.degrade import DEGRADATIONS, degrade_videos

    kinds = list(DEGRADATIONS) if args.kinds == "all" else [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not kinds:
        raise UserError(f"--kinds {args.kinds!r}: choose from {', '.join(DEGRADATIONS)} (comma-separated) or `all`")
    videos = videos_in(args.videos)
    if not videos:
        raise UserError(f"no video in {', '.join(map(str, args.videos))}")
    try:  # an unknown degradation is refused before anything is written
        written = degrade_videos(videos, args.out, kinds, progress=True, seed=args.seed)
    except ValueError as exc:
        raise UserError(f"--kinds {args.kinds!r}: {exc}") from None
    for kind, paths in written.items():
        print(f"{args.out / kind}: {len(paths)} videos ({DEGRADATIONS[kind].description})")
    print(f"next: farz train count-eval --videos {args.out}/<kind>")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from training.prepare import prepare
    from training.taxonomy import load_taxonomy

    for source in args.sources:
        if not source.exists():
            raise FileNotFoundError(f"{source}: no such dataset")
    report = prepare(args.sources, args.out, load_taxonomy(), args.ignore_unmapped, args.max_distance)
    if args.json:
        print(json.dumps(report))
        return 0
    instances = report["instances"]
    assert isinstance(instances, dict)
    print(f"{'class':<12}" + "".join(f"{s:>8}" for s in instances))
    for name in next(iter(instances.values())):
        print(f"{name:<12}" + "".join(f"{instances[s][name]:>8}" for s in instances))
    print(f"images: {report['images']}; near-duplicate groups kept within one split: {report['near_duplicate_groups']}")
    print(f"wrote {args.out / 'data.yaml'}")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    from training.config import load_train_config
    from training.fit import fit
    from training.taxonomy import load_taxonomy

    config = load_train_config(args.config, {"epochs": args.epochs, "hours": args.hours, "imgsz": args.imgsz})
    best = fit(config, load_taxonomy(), args.run or Path("runs") / config.name, data_dir=args.data)
    print(best)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from farz.errors import UserError
    from training.export import export_onnx
    from training.taxonomy import load_taxonomy

    if not args.weights.is_file():
        raise UserError(f"{args.weights}: no such weights file (a training run writes runs/<name>/weights/best.pt)")
    print(export_onnx(args.weights, args.out, load_taxonomy(), args.name, args.imgsz, args.data_hash, dynamic=not args.static))
    return 0


def run_quantize(args: argparse.Namespace) -> int:
    from farz.errors import UserError
    from training.classify_export import is_classifier_file
    from training.fit import pick_images
    from training.quantize import quantize

    if not args.model.is_file():
        raise UserError(f"{args.model}: no such model file")
    if is_classifier_file(args.model):
        from farz.commands_classify import quantize_classifier_file

        print(quantize_classifier_file(args.model, args.out, args.source, args.cutouts, args.images, args.first_conv == "fp32"))
        return 0
    if args.calib is None:
        raise UserError(f"{args.model} is a detector: pass --calib with a folder of its training images")

    kept = quantize(
        args.model,
        args.out,
        pick_images(args.calib, args.images),
        method=args.method,
        head_convs_fp32=args.head_convs == "fp32",
        attention_fp32=args.attention == "fp32",
        per_channel=args.weights == "per-channel",
        uint8_input=args.input == "uint8",
        first_conv_fp32=args.first_conv == "fp32",
    )
    what = "first conv, detect-head decoding, attention"
    print(f"wrote {args.out} ({args.input} input); kept {len(kept)} nodes in FP32 ({what}): {', '.join(kept)}")
    return 0


def run_recover(args: argparse.Namespace) -> int:
    from training.fit import pick_images
    from training.recover import recover

    result = recover(args.model, args.architecture, pick_images(args.calib, args.images), args.out)
    print(
        f"wrote {result.out}: {result.tensors} tensors from {args.model}, {result.head_copied} one-to-one head tensors copied "
        f"from the one-to-many head, BatchNorms measured on {result.images} images; "
        f"largest output difference to the ONNX file {result.max_abs_diff:.2g} (outputs up to {result.max_abs_output:.4g})"
    )
    return 0


def run_average(args: argparse.Namespace) -> int:
    from farz.errors import UserError
    from training.average import average_checkpoints

    weights = None
    if args.weights is not None:
        try:
            weights = [float(part) for part in args.weights.split(",")]
        except ValueError:
            raise UserError(f"--weights {args.weights!r}: give numbers separated by commas, e.g. 0.5,0.5") from None
    result = average_checkpoints(args.checkpoints, args.out, weights)
    shares = ", ".join(f"{path} {share:.3g}" for path, share in zip(args.checkpoints, result.weights, strict=True))
    print(f"wrote {result.out}: {result.kind}, {result.tensors} tensors averaged ({shares}), {result.kept} counters kept from the first")
    return 0


def run_convert_input(args: argparse.Namespace) -> int:
    from training.input_layout import convert_file

    print(f"wrote {args.out}: input {convert_file(args.model, args.out, uint8=args.to == 'uint8')}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from device.count import DEFAULT_MODEL
    from training.evaluate import evaluate

    args.model = args.model or DEFAULT_MODEL
    result = evaluate(args.model, args.data, args.split, args.threads, args.max_images, classifier=classifier_path(args))
    if args.record:
        from training.metadata import set_metadata

        keys = ("map50", "map50_95", "per_class", "images")
        metrics = {k: result[k] for k in keys} | {"data": f"{args.data}:{args.split}"}
        set_metadata(args.model, {"metrics": json.dumps(metrics)})
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"mAP50 {result['map50']:.3f}  mAP50-95 {result['map50_95']:.3f}  {result['images']} images  {result['ms_per_frame']} ms/frame"
        )
        for name, ap in result["per_class"].items():  # type: ignore[attr-defined]
            print(f"  {name:<12} AP50 {'-' if ap is None else f'{ap:.3f}'}")
    return 0


def _token(path: Path) -> str:
    from device.config import read_token_file

    return read_token_file(path)


def run_register(args: argparse.Namespace) -> int:
    from training.registry_client import register

    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    record = register(args.model, args.server, _token(args.token_file), metrics)
    print(json.dumps({k: record[k] for k in ("id", "name", "sha256", "size")}))
    return 0


def run_pull_samples(args: argparse.Namespace) -> int:
    from training.registry_client import pull_samples
    from training.taxonomy import load_taxonomy

    n = pull_samples(args.server, _token(args.token_file), args.site, args.out, load_taxonomy())
    print(f"wrote {n} hard samples to {args.out} (data.yaml; open in Label Studio or CVAT, then `farz train prepare {args.out}`)")
    return 0


ITEM_KEYS = ("paired", "twice", "no_item", "missed", "wrong_direction")
EMPTY_KEYS = ("false_tracks", "false_counts", "minutes")


def _nested(result: object, *path: str) -> object:
    """``result[path[0]][path[1]]…``, or None where a level is missing."""
    for key in path:
        result = result.get(key) if isinstance(result, dict) else None
    return result


def run_compare(args: argparse.Namespace) -> int:
    from device.count import SAMPLES
    from training.compare import compare
    from training.count_eval import videos_in, videos_with_truth

    videos = videos_with_truth(args.videos) if args.videos else sorted(SAMPLES.glob("*.mp4"))
    empty = videos_in(args.empty or [])
    result = compare(args.a, args.b, args.data, videos, args.split, args.threads, args.max_images, classifier_path(args), empty)
    if args.json:
        print(json.dumps(result))
        return 0
    a, b = result["a"], result["b"]
    assert isinstance(a, dict) and isinstance(b, dict)
    print(f"{'':<28}{args.a.name:>26}{args.b.name:>26}")
    figures = ("map50", "map50_95", "agnostic_ap50", "item_recall", "boxes_per_item", "ms_per_frame", "count_error")
    rows = [(key, a.get(key), b.get(key)) for key in figures]
    rows += [(f"items {key}", _nested(a, "counts", "items", key), _nested(b, "counts", "items", key)) for key in ITEM_KEYS]
    rows += [(f"empty belt {key}", _nested(a, "empty_belt", key), _nested(b, "empty_belt", key)) for key in EMPTY_KEYS]
    for key, va, vb in rows:
        if va is not None or vb is not None:
            print(f"{key:<28}{va!s:>26}{vb!s:>26}")
    print(
        f"b runs at {result['speedup_b_over_a']}x the speed of a (timed side by side); mAP50 {result['map50_delta']:+.4f}; "
        f"count error {result['count_error_delta']}; better: {result['better']}"
    )
    return 0
