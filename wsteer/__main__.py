"""``python -m wsteer`` is the ``wsteer`` command."""

import sys

from wsteer.cli import main

sys.exit(main())
