"""The array operations behind the corruptions, against direct computations."""

from __future__ import annotations

import numpy as np

from nofrost.data.corruptions import ops


def test_large_kernels_take_the_fft_path_with_the_shift_sum_result(mini_test, monkeypatch):
    images = mini_test.images[:3].permute(0, 2, 3, 1).numpy().astype(np.float32) / 255
    # asymmetric, so that a flipped kernel (convolution instead of correlation) would show
    kernel = np.random.default_rng(0).random((17, 17))
    kernel /= kernel.sum()
    assert np.count_nonzero(kernel) > ops._SHIFT_SUM_MAX_TAPS_2D
    fft = ops.correlate2d(images, kernel)
    monkeypatch.setattr(ops, "_SHIFT_SUM_MAX_TAPS_2D", 10_000)
    shift_sum = ops.correlate2d(images, kernel)
    assert fft.dtype == np.float32 and np.abs(fft - shift_sum).max() < 1e-5
    # the definition at one pixel: out[i, j] = sum over (a, b) of k[a, b] * bordered[i + a, j + b]
    bordered = np.pad(images[1, :, :, 2], 8, mode="reflect")  # OpenCV's BORDER_REFLECT_101
    assert abs(fft[1, 3, 30, 2] - np.sum(kernel * bordered[3:20, 30:47])) < 1e-6


def test_gaussian_filter_large_sigma_uses_one_matrix_per_image():
    field = np.random.default_rng(0).uniform(-1, 1, (2, 40, 40))
    # sigma 8 truncated at 3 sigma: 49 taps, the matrix path; a constant field stays constant
    assert np.allclose(ops.gaussian_filter(np.ones((1, 40, 40)), 8, mode="reflect", truncate=3), 1)
    smooth = ops.gaussian_filter(field, 8, mode="reflect", truncate=3)
    single = ops.gaussian_filter(field[1:], 8, mode="reflect", truncate=3)
    assert np.array_equal(smooth[1:], single)
    assert smooth.std() < field.std() / 5
