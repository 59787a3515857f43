"""`python -m cli ...` is `recsys ...`."""

import sys

from cli import main

sys.exit(main())
