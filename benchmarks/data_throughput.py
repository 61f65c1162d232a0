"""How fast the ImageNet input pipeline decodes, per CPU core, against what training consumes.

Builds an ImageNet ``train/<wnid>/`` layout from real photos (by default the 32 samples in
``../shared/data/imagenet-samples``, each linked ``--copies`` times), then times
``nofrost.data.make_loader`` over it with the training transform (JPEG decode,
RandomResizedCrop to ``--image-size``, flip, to tensor) for each ``--workers`` value. Real
ImageNet photos average about 400x350 px and 110 KB; the samples are of that kind.

    python benchmarks/data_throughput.py --workers 0,2 --out benchmarks/results/data_throughput_cpu.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nofrost.data import load_dataset, make_loader  # noqa: E402
from nofrost.report.tables import Table  # noqa: E402

from _report import device_name, publish  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "data" / "imagenet-samples"


def build_layout(samples: Path, root: Path, copies: int) -> int:
    photos = sorted(samples.glob("*.JPEG"))
    if not photos:
        raise SystemExit(f"no .JPEG photos in {samples}; pass --samples DIR")
    for photo in photos:
        wnid = photo.name.split("_")[1]
        folder = root / "train" / wnid
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(copies):
            os.symlink(photo.resolve(), folder / f"{i:04d}_{photo.name}")
    return len(photos) * copies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--copies", type=int, default=16, help="links per photo (default 16: 512 images)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", default="0,2", help="comma-separated DataLoader worker counts")
    parser.add_argument("--out", default=None, help="write the Markdown table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    table = Table(["workers", "images", "seconds", "images/s", "images/s per worker process"])
    with tempfile.TemporaryDirectory() as tmp:
        n = build_layout(args.samples, Path(tmp), args.copies)
        if n < 2 * args.batch:
            raise SystemExit(f"{n} images make fewer than two batches of {args.batch} (the first is not timed); raise --copies")
        dataset = load_dataset("imagenet", "train", tmp, augment=True, image_size=args.image_size)
        for workers in (int(w) for w in args.workers.split(",")):
            loader = make_loader(dataset, args.batch, shuffle=True, augment=True, num_workers=workers)
            iterator = iter(loader)
            next(iterator)  # worker start-up is not decoding
            started = time.perf_counter()
            seen = sum(len(y) for _, y in iterator)
            seconds = time.perf_counter() - started
            table.add(workers, seen, f"{seconds:.1f}", f"{seen / seconds:.0f}", f"{seen / seconds / max(workers, 1):.0f}")
    header = (
        f"ImageNet training transform (decode, RandomResizedCrop {args.image_size}, flip, to tensor) over {n} real "
        f"photos; batch {args.batch}; {device_name(torch.device('cpu'))}, {os.cpu_count()} cores; "
        f"torch {torch.__version__}.\n\n"
    )
    publish(header + table.markdown(), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
