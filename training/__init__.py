"""Datasets, training, export, INT8 quantization and evaluation of farz detectors and material classifiers.

Above ``device`` and ``vision`` (which it may import); only this package imports ultralytics or torch, and
only inside the functions that need them."""

__all__: list[str] = []
