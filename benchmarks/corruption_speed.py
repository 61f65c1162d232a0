"""How fast nofrost generates each corruption (images/s, one CPU thread), optionally next to the
``imagecorruptions`` package (or its fork ``imagecorruptions-imaug``) in the same process.

Times :func:`nofrost.data.corruptions.corrupt` on real CIFAR-10 test images at 32 px (CIFAR-10-C
constants) and on the shared ImageNet photos centre-cropped to 224 px (ImageNet-C constants), at
one severity (default 3), in batches as :class:`~nofrost.data.corruptions.CorruptedDataset`
generates them. With ``--compare`` the package's ``corrupt`` runs on the same 224 px photos
one by one (it takes one image; its constants are ImageNet-C's) and the table adds, for the
corruptions without randomness, the largest difference between its 8-bit output and ours, and
for all of them the mean absolute change each makes (same images and severity).

    python benchmarks/corruption_speed.py --out benchmarks/results/corruption_speed_cpu.md
    python benchmarks/corruption_speed.py --compare --extra-path /tmp/icpkgs --out ...
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nofrost.data import load_dataset  # noqa: E402
from nofrost.data.corruptions import corrupt, list_corruptions  # noqa: E402
from nofrost.data.imagenet import imagenet_transform  # noqa: E402
from nofrost.report.tables import Table  # noqa: E402

from _report import device_name, publish  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "data" / "imagenet-samples"
#: Corruptions whose output has no randomness: comparable pixel for pixel with another package.
DETERMINISTIC = (
    "defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression",
    "gaussian_blur", "saturate",
)
#: The distributions that install the ``imagecorruptions`` module.
PACKAGES = ("imagecorruptions-imaug", "imagecorruptions")


def photos_224(folder: Path, n: int) -> np.ndarray:
    """``n`` photos resized to 256 and centre-cropped to 224 (ImageNet-C's input), uint8 NHWC."""
    transform = imagenet_transform(224, augment=False)
    paths = sorted(folder.glob("*.JPEG"))[:n]
    if len(paths) < n:
        raise SystemExit(f"need {n} .JPEG photos in {folder}, found {len(paths)}; pass --samples DIR")
    images = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths])
    return images.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def rate(fn, n: int, repeats: int) -> tuple[float, object]:
    """Images per second of ``fn`` (which handles ``n`` images), best of ``repeats`` runs: the
    machine is shared, and the fastest run is the one least slowed by other jobs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return n / best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n32", type=int, default=512, help="CIFAR-10 test images (32 px)")
    parser.add_argument("--n224", type=int, default=8, help="ImageNet photos (224 px)")
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="time each this many times, keep the best")
    parser.add_argument("--corruptions", default=",".join(list_corruptions()))
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--compare", action="store_true", help="time imagecorruptions side by side")
    parser.add_argument("--extra-path", default=None, help="a folder to import imagecorruptions from")
    parser.add_argument("--all-variants", action="store_true",
                        help="also time all corruptions x severities 1-5 on the 32 px images (a CIFAR-10-C-gen set)")
    parser.add_argument("--evaluate", type=Path, default=None, metavar="MODEL",
                        help="also time the whole CIFAR-10-C-gen evaluation of MODEL (all corruptions x severities of "
                        "the cifar10-mini test split): generating into an empty cache, then reading the cache")
    parser.add_argument("--evaluate-n", type=int, default=None, help="with --evaluate: images per set (default: all)")
    parser.add_argument("--out", default=None, help="write the Markdown table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.extra_path:
        sys.path.append(args.extra_path)
    reference = None
    if args.compare:
        from imagecorruptions import corrupt as reference

        package = next(f"{name} {_version(name)}" for name in PACKAGES if _version(name))

    cifar = load_dataset("cifar10-mini", "test").images[: args.n32].permute(0, 2, 3, 1).numpy()
    photos = photos_224(args.samples, args.n224)
    headers = ["corruption", "ours 32 px img/s", "ours 224 px img/s"]
    if reference:
        headers += [f"{package} 224 px img/s", "max abs difference (0-255)", "mean change ours / theirs"]
    table = Table(headers)
    s = args.severity
    for name in args.corruptions.split(","):
        fast32, _ = rate(lambda: corrupt(cifar, name, s), len(cifar), args.repeats)
        fast224, ours = rate(lambda: corrupt(photos, name, s, resolution="imagenet"), len(photos), args.repeats)
        row = [name, f"{fast32:,.0f}", f"{fast224:,.1f}"]
        if reference:
            reference(photos[0], corruption_name=name, severity=s)  # warm-up (numba compiles)
            speed, theirs = rate(
                lambda: np.stack([np.uint8(reference(p, corruption_name=name, severity=s)) for p in photos]),
                len(photos),
                args.repeats,
            )
            diff = np.abs(ours.astype(int) - theirs).max() if name in DETERMINISTIC else "random"
            change = [np.abs(o.astype(float) - photos).mean() for o in (ours, theirs)]
            row += [f"{speed:,.1f}", str(diff), f"{change[0]:.1f} / {change[1]:.1f}"]
        table.add(*row)
        print(" ".join(row), flush=True)
    note = (
        f"Generation speed at severity {s}: {len(cifar)} CIFAR-10 test images (32 px, CIFAR-10-C "
        f"constants) and {len(photos)} ImageNet photos (224 px, ImageNet-C constants); one thread; "
        f"best of {args.repeats} runs; "
        f"{device_name(torch.device('cpu'))}; numpy {np.__version__}."
    )
    text = note + "\n\n" + table.markdown()
    if args.all_variants:
        start = time.perf_counter()
        for name in args.corruptions.split(","):
            for severity in range(1, 6):
                corrupt(cifar, name, severity)
        seconds = time.perf_counter() - start
        variants = 5 * len(args.corruptions.split(","))
        text += (
            f"\n\nAll {variants} corruption x severity variants of {len(cifar)} images at 32 px: "
            f"{seconds:.1f} s, {variants * len(cifar) / seconds:,.0f} images/s "
            f"(10,000 test images: about {seconds * 10_000 / len(cifar) / 60:.0f} min)."
        )
    if args.evaluate is not None:
        text += "\n\n" + time_evaluation(args.evaluate, args.corruptions, args.evaluate_n)
    publish(text, args.out)
    return 0


def time_evaluation(model_dir: Path, corruptions: str, n: int | None) -> str:
    """Wall time of ``evaluate_corruptions(model, "cifar10-c-gen")``, first generating every set
    into an empty cache, then again from the cache (the run a user repeats)."""
    import os
    import tempfile

    from nofrost import load_model
    from nofrost.evaluate.corruptions import evaluate_corruptions

    model = load_model(model_dir)
    seconds, result = [], None
    with tempfile.TemporaryDirectory() as cache:
        saved = os.environ.get("NOFROST_CACHE")
        os.environ["NOFROST_CACHE"] = cache
        try:
            for _ in ("generating", "cached"):
                start = time.perf_counter()
                result = evaluate_corruptions(model, "cifar10-c-gen", corruptions=corruptions, n=n, batch_size=500)
                seconds.append(time.perf_counter() - start)
        finally:
            if saved is None:
                os.environ.pop("NOFROST_CACHE")
            else:
                os.environ["NOFROST_CACHE"] = saved
    sets = len(result.corruptions) * 5
    return (f"Whole CIFAR-10-C-gen evaluation of `{model_dir}` ({sets} sets x {result.n // sets:,} images, "
            f"{torch.get_num_threads()} thread(s)): {seconds[0]:.0f} s generating into an empty cache, "
            f"{seconds[1]:.0f} s reading the cache; mean corruption accuracy {100 * result.mean_corruption_accuracy:.2f}%.")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
