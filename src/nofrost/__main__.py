"""``python -m nofrost`` (also what ``torchrun -m nofrost`` runs)."""

import sys

from nofrost.cli import main

sys.exit(main())
