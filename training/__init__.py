"""Dataset preparation, training, export, INT8 quantization and evaluation of farz detectors.

Only this package imports ultralytics or torch, and only inside the functions that need them.
"""

__all__: list[str] = []
