"""Benchmarks, one home: edge, agent, server and model figures; each prints ratios measured in one run.

May import any package; only the ``farz bench`` commands import it.
"""

__all__: list[str] = []
