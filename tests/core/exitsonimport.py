"""A job module that exits the process that imports it (see test_worker)."""

import sys

sys.exit("refusing to be imported")
