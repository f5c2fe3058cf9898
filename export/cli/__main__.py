"""``python -m export.cli``: the ``graphcap`` command."""

import sys

from export.cli.app import main

sys.exit(main())
