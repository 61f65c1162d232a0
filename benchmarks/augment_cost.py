"""Cost of NoFrost*'s augmentations as a fraction of one NoFrost* training step.

All arms run in this one process on the same batch and alternate in rounds, so a busy machine
hits them alike. The step is :class:`nofrost.train.loop.TrainingStep` with the ``nofrost-star``
method on a normalizer-free model: PGD-K, DeepAugment on the examples Eq. 2 gives it (about
half), and one fused forward/backward over clean, augmented and adversarial images. The TDA
view is not part of the step: the loader makes it (batched on the device for tensor datasets,
per image in the workers for folder datasets), so its cost is added to the step's for the
fraction. Each augmentation arm processes the whole batch:

- TDA batched on the device (:func:`nofrost.data.tda.texture_debiased_batch`, the tensor-dataset
  path) and TDA per image with ``transforms.v2`` (the folder-dataset path, one worker's work);
- DeepAugment variants: Noise2Net, and CAE / EDSR with weights of the published architectures
  made here at random (the cost does not depend on the weight values).

    python benchmarks/augment_cost.py --device cpu        # cifar_resnet10 NF, 32 px, batch 64, PGD-10
    python benchmarks/augment_cost.py --device cuda       # nf_resnet50, 224 px, batch 64, PGD-10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nofrost.config import load_config  # noqa: E402
from nofrost.data import load_dataset  # noqa: E402
from nofrost.data.deepaugment import CAE, EDSR, DeepAugment  # noqa: E402
from nofrost.data.tda import tda_transform, texture_debiased_batch  # noqa: E402
from nofrost.report.tables import Table  # noqa: E402

from _report import alternate, device_name, publish, timing_arguments, timing_device, training_step  # noqa: E402

PRESETS = {
    "cpu": dict(model="cifar_resnet10", norm="none", image_size=None, batch=64, steps=10),
    "cuda": dict(model="nf_resnet50", norm=None, image_size=224, batch=64, steps=10),
}
STEP = "NoFrost* training step"


def source_images(batch: int, size: int | None) -> torch.Tensor:
    """Real cifar10-mini images (uint8), or at ``size`` pixels random-resized from them."""
    images = load_dataset("cifar10-mini", "train").images[:batch]
    if size is None:
        return images
    upscaled = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=False)
    return upscaled.round().clamp(0, 255).to(torch.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    timing_arguments(parser, rounds=3)
    parser.add_argument("--batch", type=int, help="batch size (default: 64)")
    parser.add_argument("--steps", type=int, help="PGD steps (default: 10)")
    parser.add_argument("--width", type=int, help="model.width (CIFAR models; default: the model's)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per arm first")
    args = parser.parse_args(argv)

    device = timing_device(args)
    preset = PRESETS["cuda" if device.type == "cuda" else "cpu"]
    batch, steps = args.batch or preset["batch"], args.steps or preset["steps"]
    data = "cifar10-mini" if preset["model"].startswith("cifar") else "imagenet"
    overrides = [f"data.name={data}", f"model.name={preset['model']}", f"attack.steps={steps}", "method.name=nofrost-star",
                 f"optim.batch_size={batch}", f"runtime.device={device}", "optim.lr=0.01", "runtime.cpu_bf16=false"]
    overrides += [f"model.norm={preset['norm']}"] if preset["norm"] else []
    overrides += [f"data.image_size={preset['image_size']}"] if preset["image_size"] else []
    overrides += [f"model.width={args.width}"] if args.width else []
    config = load_config("quickstart", overrides=overrides)

    raw = source_images(batch, preset["image_size"]).to(device)
    x = raw.float().div(255)
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(0)).to(device)
    tda_generator = torch.Generator().manual_seed(1)
    tda_view = texture_debiased_batch(raw, tda_generator)

    torch.manual_seed(0)
    step = training_step(config, device)

    per_image_tda = tda_transform(raw.shape[-1])
    folder = Path(tempfile.mkdtemp())
    torch.save(CAE().state_dict(), folder / "cae.pt")
    torch.save(EDSR().state_dict(), folder / "edsr.pt")
    deepaugment = {
        "DeepAugment: Noise2Net": DeepAugment("noise2net"),
        "DeepAugment: CAE": DeepAugment("cae", cae_weights=str(folder / "cae.pt")),
        "DeepAugment: EDSR": DeepAugment("edsr", edsr_weights=str(folder / "edsr.pt")),
    }
    autocast = step.ctx.autocast
    cpu_raw = raw.cpu()

    arms = {
        STEP: lambda: step(x, y, {"tda": tda_view}),
        "TDA, batched on the device": lambda: texture_debiased_batch(raw, tda_generator),
        "TDA, per image (transforms.v2, one worker)": lambda: [per_image_tda(image) for image in cpu_raw],
    }
    for name, augment in deepaugment.items():
        def run(augment=augment):
            with autocast():
                return augment(x)
        arms[name] = run

    load_before = os.getloadavg()[0]
    seconds = alternate(arms, device, rounds=args.rounds, warmup=args.warmup)

    load_after = os.getloadavg()[0]
    step_s = statistics.median(seconds[STEP])
    tda_s = statistics.median(seconds["TDA, batched on the device"])
    table = Table(["arm", "ms per batch", "× NoFrost* step"])
    results = []
    for name in arms:
        median = statistics.median(seconds[name])
        table.add(name, f"{1000 * median:.1f}", f"{median / step_s:.3f}")
        results.append({"arm": name, "seconds": median, "all_rounds": seconds[name], "fraction_of_step": median / step_s})
    card = device_name(device)
    header = (
        f"{preset['model']} ({'norm ' + preset['norm'] if preset['norm'] else 'default norm'}"
        f"{f', width {args.width}' if args.width else ''}), {raw.shape[-1]} px, batch {batch}, PGD-{steps}; "
        f"cifar10-mini images. Device: {card}"
        f"{f', {torch.get_num_threads()} CPU thread(s), 1-min load average {load_before:.1f} before / {load_after:.1f} after on {os.cpu_count()} cores' if device.type == 'cpu' else ''}; "
        f"torch {torch.__version__}. "
        f"Median of {args.rounds} rounds after {args.warmup} warm-up call(s). The step includes DeepAugment "
        f"(Noise2Net) on the ~half of the batch Eq. 2 gives it; the TDA view (made by the loader) adds "
        f"{100 * tda_s / step_s:.1f}% of a step on top.\n\n"
    )
    publish(header + table.markdown(), args.out)
    if args.out:
        Path(args.out).with_suffix(".json").write_text(
            json.dumps({"device": card, "header": header.strip(), "results": results}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
