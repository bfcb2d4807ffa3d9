"""Peak resident memory that a piece of work adds (Linux), for benchmarks and tests."""
import multiprocessing
import os
import threading
import time
from typing import Callable


def resident_bytes() -> int:
    """Resident set size of this process, from ``/proc/self/statm``."""
    with open("/proc/self/statm") as file_:
        return int(file_.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _measure(work: Callable[[], object], conn, interval: float) -> None:
    start = resident_bytes()
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], resident_bytes())
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        work()
    except BaseException as error:  # report it to the parent instead of hanging it
        conn.send(error)
        return
    finally:
        done.set()
        sampler.join()
    conn.send(max(peak[0], resident_bytes()) - start)


def peak_memory_added(work: Callable[[], object], interval: float = 0.002) -> float:
    """MB of resident memory that ``work()`` adds at its peak.

    It runs in a forked child, so what earlier work allocated and freed (and the
    allocators keep) neither hides nor inflates it; the peak is sampled every
    ``interval`` seconds.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_measure, args=(work, sender, interval))
    process.start()
    result = receiver.recv()
    process.join()
    if isinstance(result, BaseException):
        raise result
    return result / 2**20
