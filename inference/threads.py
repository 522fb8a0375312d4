"""The analyzer's threads: the two models own the cores, numpy's BLAS gets one.

OpenBLAS starts one thread per core for every matrix product, however small. In a worker
whose cores the models already keep busy, those threads wait on each other: the mask
product of one photo's detections ((N, 32) x (32, H*W), under a millisecond alone) took
12-16 ms with two BLAS threads on the 2-core CI machine under load, and 0.23 ms with one,
with bit-identical results (the work is split by output element, never inside a sum).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def single_threaded_blas() -> None:
    """Limit numpy's BLAS to one thread in this process (call once, after fork)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    log.debug("numpy BLAS limited to one thread")
