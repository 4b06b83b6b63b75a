"""Small helpers shared by the benchmark children: timing, machine state, JSON."""

import json
import os
import resource
import statistics
import time


def load_average():
    """The 1-minute load average, or `None` where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def peak_rss_mib():
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def cpu_seconds():
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summarize(samples):
    """Median, min, max and count of a list of timings (seconds)."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
        "samples": list(samples),
    }


class Stopwatch:
    """Context manager measuring wall time with `time.perf_counter`."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


def write_text(path, text):
    """Write `text` to `path` through a temporary name, so no reader sees half a file."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path, payload, sort_keys=True):
    write_text(path, json.dumps(payload, indent=1, sort_keys=sort_keys) + "\n")


def write_final_json(path, payload):
    """The child's last write: its payload with the load average at the end."""
    write_json(path, {**payload, "load_average_end": load_average()})


def quiet_backends():
    """Silence TensorFlow's C++ start-up chatter in children's logs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
