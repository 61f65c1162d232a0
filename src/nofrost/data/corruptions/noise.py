"""Noise corruptions: Gaussian, shot (Poisson), impulse (salt and pepper) and speckle."""

from __future__ import annotations

import numpy as np

from nofrost.data.corruptions.base import CORRUPTIONS, draw


@CORRUPTIONS.register("gaussian_noise")
def gaussian_noise(x, params, rngs):
    """Add normal noise of standard deviation ``params[0]``."""
    (sigma,) = params
    return x + draw(rngs, lambda rng: rng.normal(0.0, sigma, x.shape[1:])).astype(np.float32)


@CORRUPTIONS.register("shot_noise")
def shot_noise(x, params, rngs):
    """Poisson photon counts at ``params[0]`` photons per unit intensity, rescaled."""
    (photons,) = params
    counts = np.stack([rng.poisson(image * photons) for rng, image in zip(rngs, x.astype(np.float64))])
    return (counts / photons).astype(np.float32)


@CORRUPTIONS.register("impulse_noise")
def impulse_noise(x, params, rngs):
    """Set a fraction ``params[0]`` of the values (each channel drawn on its own) to 0 or 1
    with equal odds (scikit-image ``random_noise(mode="s&p")``)."""
    (amount,) = params
    flipped = draw(rngs, lambda rng: rng.random(x.shape[1:]) < amount)
    salt = draw(rngs, lambda rng: rng.random(x.shape[1:]) < 0.5)
    out = x.copy()
    out[flipped & salt] = 1
    out[flipped & ~salt] = 0
    return out


@CORRUPTIONS.register("speckle_noise")
def speckle_noise(x, params, rngs):
    """Multiply by ``1 + e`` with ``e`` normal of standard deviation ``params[0]``."""
    (sigma,) = params
    return x + x * draw(rngs, lambda rng: rng.normal(0.0, sigma, x.shape[1:])).astype(np.float32)
