"""The corruption registry and the signature every corruption implements.

A corruption is a function ``fn(x, params, rngs) -> y``: ``x`` is a float32 batch
``(N, H, W, 3)`` in [0, 1], ``params`` the published parameter tuple of one severity (see
:mod:`~nofrost.data.corruptions.constants`), ``rngs`` one NumPy generator per image, and ``y``
the corrupted batch (the caller clips it to [0, 1]). Every random draw for image ``i`` comes from
``rngs[i]`` and every operation treats the images independently, so a result never depends on
which other images share the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nofrost.registry import Registry

Corruption = Callable[[np.ndarray, tuple, Sequence[np.random.Generator]], np.ndarray]

CORRUPTIONS: Registry[Corruption] = Registry("corruption")


def draw(rngs: Sequence[np.random.Generator], sample: Callable[[np.random.Generator], np.ndarray]):
    """``sample(rng)`` for each image's generator, stacked along a new first axis."""
    return np.stack([np.asarray(sample(rng)) for rng in rngs])
