"""Train under torchrun for the DDP tests (not a test module itself).

    python -m torch.distributed.run --standalone --nproc_per_node=2 ddp_train.py OUT STOP_AT [--resume] KEY=VALUE...

``STOP_AT`` > 0 makes every rank exit with status 3 when epoch ``STOP_AT`` (0-based) would
start, i.e. right after epoch ``STOP_AT``'s checkpoint: a job killed between epochs.
"""

import sys

from nofrost.config import load_config
from nofrost.train import loop, train

out, stop_at, *rest = sys.argv[1:]
resume = "--resume" in rest
overrides = [a for a in rest if a != "--resume"]
if int(stop_at) > 0:
    real_derive_seed = loop.derive_seed

    def derive_seed(seed, epoch, rank):
        if epoch == int(stop_at):
            raise SystemExit(3)
        return real_derive_seed(seed, epoch, rank)

    loop.derive_seed = derive_seed
train(load_config("quickstart", overrides=overrides), out, resume=resume, quiet=True)
