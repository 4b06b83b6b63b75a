"""Markdown pieces of the benchmark report: numbers with their spread, tables, verdicts."""

import statistics


def ms(seconds):
    return f"{seconds * 1e3:.1f}"


def spread(summary, scale=1.0, digits=2):
    return (f"{summary['median'] * scale:.{digits}f} "
            f"[{summary['min'] * scale:.{digits}f}–{summary['max'] * scale:.{digits}f}]")


def pm(values, pct=True):
    if not values:
        return "n/a"
    mean, std = statistics.fmean(values), statistics.pstdev(values)
    return f"{mean:.2%} ± {std:.2%}" if pct else f"{mean:.3f} ± {std:.3f}"


def table(header, rows):
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def target(what, value, met, by=""):
    """One target: what it asks, the measured value, the verdict and, if missed, by how much."""
    return {"what": what, "value": value, "met": bool(met), "by": "" if met else by}


def verdict(t):
    return "**met**" if t["met"] else "**missed**" + (f" by {t['by']}" if t["by"] else "")
