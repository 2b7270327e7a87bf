"""``python -m actors``: the ``membership`` command."""

import sys

from actors.cli.main import main

sys.exit(main())
