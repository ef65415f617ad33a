"""``python -m jaxhpo``: the command line (see :mod:`jaxhpo._cli`)."""

import sys

from jaxhpo._cli import main

sys.exit(main())
