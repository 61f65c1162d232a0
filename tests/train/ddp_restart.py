"""`nofrost train ... --resume auto` under torchrun --max-restarts, for the fault test (not a test module).

    python -m torch.distributed.run --standalone --nproc_per_node=2 --max-restarts=1 ddp_restart.py KILL_STEP ARGS...

On torchrun's first attempt (TORCHELASTIC_RESTART_COUNT=0), rank 1 dies (os._exit) at its
KILL_STEP-th optimizer step, in the middle of an epoch; torchrun then stops rank 0 and starts
both again with the same arguments, which is what a lost worker looks like. KILL_STEP 0: no
kill. ARGS are `nofrost train`'s.
"""

import os
import sys

from nofrost.cli import main
from nofrost.train import loop

kill_step, *args = sys.argv[1:]
if int(kill_step) > 0 and os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0" and os.environ.get("RANK") == "1":
    real_call = loop.TrainingStep.__call__
    calls = 0

    def dying_call(self, x, y):
        global calls
        calls += 1
        if calls == int(kill_step):
            print(f"ddp_restart: rank 1 dies at step {calls} of attempt 0", file=sys.stderr, flush=True)
            os._exit(1)
        return real_call(self, x, y)

    loop.TrainingStep.__call__ = dying_call
sys.exit(main(["train", *args]))
