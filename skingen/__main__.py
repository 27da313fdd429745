"""``python -m skingen`` = the ``skingen`` command."""

import sys

from skingen.cli import main

sys.exit(main())
