"""The ``farz`` command: one entry point, subcommands per role.

Exit codes: 0 success; 1 internal error (a bug: please report it); 2 usage error; 3 bad input (a file,
model, video or setting that is missing or invalid); 4 a quality or speed target was not met;
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from farz import commands_count, commands_device, commands_server, commands_train
from farz.errors import EXIT_BAD_INPUT, UserError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_TARGET_MISSED = 4
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="farz",
        description="farz counts and classifies waste items crossing a line on a sorting-point camera.",
        epilog="Exit codes: 0 ok, 2 usage error, 3 bad input (file, model, video, setting), 4 target missed, 1 internal error.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands_count.register(sub)
    commands_device.register(sub)
    commands_server.register(sub)
    commands_train.register(sub)
    return parser


def _known_errors() -> tuple[type[BaseException], ...]:
    from device.count_config import ConfigError
    from device.sources import SourceError
    from vision.errors import VisionError

    errors: list[type[BaseException]] = [UserError, ConfigError, SourceError, VisionError, FileNotFoundError]
    try:
        from training.average import AverageError
        from training.classify_adapt import AdaptError
        from training.classify_data import ClassifyDataError
        from training.classify_export import ClassifierFileError
        from training.config import ConfigError as TrainConfigError
        from training.input_layout import LayoutError
        from training.pack import PackError
        from training.prepare import PrepareError
        from training.recover import RecoverError
        from training.registry_client import RegistryError
        from training.taxonomy import TaxonomyError

        errors += [TrainConfigError, TaxonomyError, PrepareError, RegistryError, LayoutError, RecoverError, PackError]
        errors += [ClassifyDataError, ClassifierFileError, AdaptError, AverageError]
        try:
            from training.classify_model import ClassifyModelError

            errors.append(ClassifyModelError)
        except ImportError:  # pragma: no cover - torch absent
            pass
    except ImportError:  # pragma: no cover - training extra absent
        pass
    try:
        from server.auth import AdminError
        from server.broker import BrokerError
        from server.settings import SettingsError

        errors += [AdminError, SettingsError, BrokerError]
    except ImportError:  # pragma: no cover - training extra absent
        pass
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``farz`` command line; returns the process exit code."""
    # FFmpeg prints its own errors for unreadable files; farz reports them in one line instead.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("farz: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _known_errors() as exc:
        message = str(exc) or type(exc).__name__
        print(f"farz {args.command}: error: {message}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_BAD_INPUT)
    except ModuleNotFoundError as exc:
        extra = "training" if exc.name in {"ultralytics", "torch", "onnx", "supervision", "pycocotools", "onnxslim"} else "device"
        print(
            f"farz {args.command}: error: the Python package {exc.name!r} is missing; install it with `pip install 'farz[{extra}]'`",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
