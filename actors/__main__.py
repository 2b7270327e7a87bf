"""``python -m actors``: the ``membership`` command."""

import sys

from actors.cli import main

sys.exit(main())
