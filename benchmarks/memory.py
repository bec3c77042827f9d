"""Peak extra memory of the post-sample path, measured as resident memory (RSS) of a fresh process.

Why RSS: the path allocates through torch, numpy and PIL, and only the operating system sees all
three (``tracemalloc`` sees none of them; torch's profiler sees only torch). How it is kept
honest:

* it runs in a child process (``python -m benchmarks.memory``), so nothing the benchmark did
  before is resident or cached;
* the child runs with ``MALLOC_MMAP_THRESHOLD_`` fixed at 64 KiB, so every large buffer is its own
  mapping that goes back to the system when freed — RSS then follows the live buffers instead
  of glibc's high-water heap;
* a small warm-up call first loads code and thread pools, which are not the path's working set;
* Linux's peak-RSS counter (``VmHWM``) is reset just before each measured call (writing 5 to
  ``/proc/self/clear_refs``) and read right after: peak extra = VmHWM − RSS before the call.
  Where that reset is not available the figure comes from ``ru_maxrss`` instead and is marked so
  (it can only over-state the peak when setup used more than the call).

"Retained" is what the call's results (mask pictures, overlays) still hold afterwards.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["measure_in_subprocess"]

_MMAP_THRESHOLD = str(64 * 1024)
_REPO_ROOT = Path(__file__).resolve().parent.parent


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def _rss_kib() -> int:
    rss = _status_kib("VmRSS")
    return rss if rss is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_extra(call: Callable[[], object]) -> dict[str, float | str]:
    """Run ``call`` once; MiB of peak extra resident memory, and of what its result keeps."""
    gc.collect()
    before = _rss_kib()
    exact = _reset_peak()
    result = call()
    peak = _status_kib("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    after = _rss_kib()
    del result
    gc.collect()
    return {
        "peak_extra_mib": max(0, (peak or after) - before) / 1024,
        "retained_mib": max(0, after - before) / 1024,
        "method": "VmHWM reset" if exact else "ru_maxrss (upper bound)",
    }


def _child(size: int, batch: int, threads: int | None) -> dict[str, object]:
    import torch

    from .cases import make_case

    if threads:
        torch.set_num_threads(threads)
    make_case(8, batch).post_sample()  # warm-up: code, thread pools, PIL's filters
    case = make_case(size, batch)
    map_mib = batch * size * size * 4 / 2**20
    report: dict[str, object] = {
        "latent_size": size, "batch": batch, "picture_size": case.picture_size,
        "torch_threads": torch.get_num_threads(),
        "one_map_mib": map_mib, "25_maps_mib": 25 * map_mib,
        "latents_mib": 2 * case.latent_orig.numel() * 4 / 2**20,
    }
    report["difference_masks"] = _peak_extra(case.difference_masks)
    report["post_sample"] = _peak_extra(case.post_sample)
    return report


def measure_in_subprocess(size: int, batch: int, threads: int | None = None,
                          timeout_s: float = 900) -> dict[str, object]:
    """Run the measurement in a fresh interpreter and return its report."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=_MMAP_THRESHOLD)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "benchmarks.memory", "--size", str(size), "--batch", str(batch)]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, cwd=_REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=512, help="latent size (picture = 8x)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    print(json.dumps(_child(args.size, args.batch, args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
