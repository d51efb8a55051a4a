"""A job module that remembers which process imported it (see test_worker)."""

import os

IMPORTED_BY = os.getpid()


def imported_by() -> int:
    return IMPORTED_BY
