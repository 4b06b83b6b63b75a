"""The machine a section ran on: CPU, ISA flags, RAM, GPUs and library versions.

`describe_machine()` is stored with each section's results (no imports of the measured
libraries needed); `machine_lines(stored)` lists, in the report, every machine that
produced a stored section.
"""

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

DISTRIBUTIONS = ("keras", "jax", "jaxlib", "tensorflow-cpu", "tensorflow", "torch", "numpy",
                 "scipy", "scikit-learn")
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def _read(path):
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def nvidia_gpus():
    """`name, memory, driver` of each NVIDIA GPU, from nvidia-smi (empty without one)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def describe_machine():
    """CPU model, cores, ISA flags, RAM, GPUs, OS and library versions (no imports needed)."""
    model, flags, mem_kib = platform.processor() or "unknown", set(), None
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name") and ":" in line:
            model = line.split(":", 1)[1].strip()
        elif line.startswith("flags") and ":" in line:
            flags = set(line.split(":", 1)[1].split())
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    versions = {}
    for dist in DISTRIBUTIONS:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"cpu_model": model, "logical_cpus": os.cpu_count(),
            "isa_flags": [f for f in ISA_FLAGS if f in flags],
            "ram_gib": round(mem_kib / 1024**2, 1) if mem_kib else None, "gpus": nvidia_gpus(),
            "os": platform.platform(), "python": platform.python_version(), "versions": versions}


def _machine_summary(machine):
    gpus = machine.get("gpus") or []
    return (f"{machine.get('cpu_model', 'unknown CPU')}, {machine.get('logical_cpus')} logical "
            f"CPUs, ISA {', '.join(machine.get('isa_flags') or []) or 'n/a'}"
            + (f"; GPU {', '.join(gpus)}" if gpus else ""))


def machine_lines(stored, order=None):
    """Every machine that produced a stored section, with the sections it produced (in
    `order`, default: the stored order)."""
    machines = {}
    for name in order or stored:
        if name not in stored:
            continue
        section = stored[name]
        m = section["machine"]
        key = (m["cpu_model"], m["logical_cpus"], tuple(m["isa_flags"]), tuple(m.get("gpus") or ()))
        machines.setdefault(key, (m, []))[1].append(name)
    lines = ["## Machines", ""]
    if len(machines) > 1:
        lines += ["The sections were measured on different machines; each section's header "
                  "names its own. Compare speed numbers only within a section.", ""]
    for m, names in machines.values():
        v = {**m["versions"], "tensorflow": m["versions"].get("tensorflow-cpu")
             or m["versions"].get("tensorflow", "not installed")}
        libraries = ", ".join(f"{k} {v.get(k, 'not installed')}" for k in (
            "keras", "jax", "tensorflow", "torch", "numpy", "scikit-learn"))
        lines.append(f"- **{', '.join(names)}**: CPU {_machine_summary(m)}; "
                     + ("" if m.get("gpus") else "no GPU; ")
                     + f"RAM {m['ram_gib']} GiB; {m['os']}; Python {m['python']}; {libraries}.")
    return lines + [""]
