"""``python -m benchmarks``: what each stage costs, how it scales, and how much memory it takes.

Measured side by side in one run, on the CPU and (when available) on CUDA:

(a) after sampling, once per batch: ``latent_difference_masks`` and the whole post-sample hook
    (overlay images, masks, mask pictures, overlays) against the per-pixel reference of SPEC §7;
    the reference runs only up to ``--reference-max`` at batch 1 and is extrapolated by pixel
    count beyond that (marked ``~``);
(b) every sampler step: ``get_modified_nmask`` + ``latent_blend`` against the host's hard blend
    and upstream's float64 formulation, once with the same channel-norm kernels as ours (what
    the formulation costs) and once with ``torch.norm`` as upstream calls it;
(c) ComfyUI, every sampler step: the patched blend against ComfyUI's own two hard blends at
    128² latents, batch 1 and 4 (``benchmarks.comfy``);
(d) 16-channel latents (SD3, Flux) beside 4-channel ones at 128² latents, batch 1 and 4: the
    per-step blend, the diffusers adapter's flow step on unpacked and packed Flux latents, and the
    difference masks (``benchmarks.channels``);
(e) peak extra memory of the post-sample hook, in a fresh process (see ``benchmarks.memory``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from . import channels, comfy, report
from .cases import make_case
from .memory import measure_in_subprocess
from .report import EXTRAPOLATED, MEASURED, SUMMED, Row, format_ratio, format_seconds
from .timing import Timing, measure, measure_together

__all__ = ["main"]

FULL_SIZES = (64, 128, 256, 512)
FULL_BATCHES = (1, 4, 8)
QUICK_SIZES = (64, 128, 256)
QUICK_BATCHES = (1, 4)

MASKS, MASKS_REF = "difference_masks", "difference_masks_per_pixel"
PIXELS = "pixel_stage"
POST, POST_REF = "post_sample", "post_sample_per_pixel"
HARD, FLOAT64, UPSTREAM, OURS = "hard_blend", "stage1_float64", "stage1_upstream", "stage1"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"sizes {QUICK_SIZES}, batches {QUICK_BATCHES}, shorter timing budget")
    parser.add_argument("--sizes", type=int, nargs="+", help=f"latent sizes (default {FULL_SIZES})")
    parser.add_argument("--batches", type=int, nargs="+", help=f"batch sizes (default {FULL_BATCHES})")
    parser.add_argument("--reference-max", type=int, default=256,
                        help="largest latent size the per-pixel reference runs at (batch 1); 0 = never")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of timed calls per figure (default 1, 0.25 with --quick)")
    parser.add_argument("--min-repeats", type=int, default=3, help="timed calls per figure at least")
    parser.add_argument("--devices", nargs="+", default=None,
                        help="default: cpu, plus cuda when torch sees a GPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--memory-size", type=int, default=512, help="latent size of the memory figure")
    parser.add_argument("--memory-batch", type=int, default=4, help="batch of the memory figure")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory figure")
    parser.add_argument("--no-plot", action="store_true", help="skip timings.png")
    parser.add_argument("--upstream", type=Path, default=None, metavar="PATH",
                        help="also time the built-in extension's own code in this run: PATH is its "
                             "scripts/soft_inpainting.py from a WebUI checkout")
    parser.add_argument("--upstream-size", type=int, default=128, help="latent size for that (default 128)")
    parser.add_argument("--upstream-repeats", type=int, default=3, help="timed runs of the built-in's code")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                        help="output folder for report.txt, timings.csv, timings.png, memory.json")
    args = parser.parse_args(argv)
    args.sizes = tuple(args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES))
    args.batches = tuple(args.batches or (QUICK_BATCHES if args.quick else FULL_BATCHES))
    if args.budget is None:
        args.budget = 0.25 if args.quick else 1.0
    if args.devices is None:
        args.devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if min(args.sizes) < 1 or min(args.batches) < 1:
        parser.error("sizes and batches must be positive")
    if any(d.startswith("cuda") for d in args.devices) and not torch.cuda.is_available():
        parser.error("--devices cuda: torch sees no CUDA device here")
    if args.upstream is not None and not args.upstream.is_file():
        parser.error(f"--upstream {args.upstream}: no such file")
    return args


class Log:
    """Prints the report and keeps it for ``report.txt``; progress goes to stderr only."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    @staticmethod
    def progress(text: str) -> None:
        print(f"  .. {text}", file=sys.stderr, flush=True)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    memory = ""
    with contextlib.suppress(AttributeError, ValueError, OSError):  # not every system reports it
        memory = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM"
    text = (f"{cpu}, {os.cpu_count()} CPUs{memory}; torch {torch.__version__}, {torch.get_num_threads()} "
            f"CPU threads; Python {platform.python_version()}; {platform.system()}")
    if torch.cuda.is_available():
        text += f"; GPU: {torch.cuda.get_device_name(0)}"
    return text


class OtherWork:
    """How much of the machine's CPU time other processes used while the benchmark ran.

    Timings on a shared machine are skewed by whatever else runs, so the report says how much
    did: busy time from ``/proc/stat`` (Linux) minus this process's own and its children's.
    """

    def __init__(self) -> None:
        self.start = self._snapshot()

    @staticmethod
    def _busy_seconds() -> float | None:
        try:
            with open("/proc/stat", encoding="ascii") as stat:
                ticks = [int(x) for x in stat.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
        return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    def _snapshot(self) -> tuple[float, float | None, float]:
        own = os.times()
        return time.perf_counter(), self._busy_seconds(), own.user + own.system + own.children_user + \
            own.children_system

    def summary(self) -> str:
        wall0, busy0, own0 = self.start
        wall1, busy1, own1 = self._snapshot()
        if busy0 is None or busy1 is None or wall1 <= wall0:
            return "CPU time of other processes during the run: unknown (no /proc/stat)"
        others = max(0.0, (busy1 - busy0) - (own1 - own0))
        share = others / ((wall1 - wall0) * (os.cpu_count() or 1))
        return (f"Run time {wall1 - wall0:.0f} s; other processes used {100 * share:.0f}% of the machine's "
                f"{os.cpu_count()} CPUs meanwhile (figures from a busy machine are slower and noisier)")


def _row(device: str, stage: str, method: str, size: int, batch: int, timing: Timing,
         source: str = MEASURED) -> Row:
    return Row(device, stage, method, size, batch, timing.median, timing.best, timing.repeats, source)


def _reference_per_pixel(sizes: Sequence[int], limit: int, args: argparse.Namespace) -> dict[int, Timing]:
    """The per-pixel reference's time at batch 1 for every size up to ``limit`` (always on the CPU)."""
    timings = {}
    for size in sorted(s for s in sizes if s <= limit):
        Log.progress(f"per-pixel reference, latent {size}², batch 1")
        case = make_case(size, 1)
        timings[size] = measure(case.difference_masks_per_pixel, budget_s=0, warmup=0,
                                min_repeats=1 if args.quick else min(args.min_repeats, 3))
    return timings


def _reference_row(device: str, size: int, batch: int, ref: dict[int, Timing]) -> Row | None:
    """The reference at (size, batch): measured at batch 1, else scaled by pixels from the largest run."""
    if not ref:
        return None
    if batch == 1 and size in ref:
        return _row(device, "post_sample", MASKS_REF, size, 1, ref[size])
    base = max(ref)
    scale = size * size * batch / (base * base)
    t = ref[base]
    return Row(device, "post_sample", MASKS_REF, size, batch, t.median * scale, t.best * scale, 0,
               EXTRAPOLATED)


def _post_sample_rows(device: str, args: argparse.Namespace, ref: dict[int, Timing]) -> list[Row]:
    rows = []
    for size in args.sizes:
        for batch in args.batches:
            Log.progress(f"{device}: post-sample, latent {size}², batch {batch}")
            case = make_case(size, batch, device)
            masks = case.difference_masks().cpu().numpy()
            calls = {
                MASKS: case.difference_masks,
                PIXELS: lambda case=case, masks=masks: case.pixel_stage(masks),
                POST: case.post_sample,
            }
            timed = measure_together(calls, device, budget_s=args.budget, min_repeats=args.min_repeats)
            rows += [_row(device, "post_sample", name, size, batch, t) for name, t in timed.items()]
            reference = _reference_row(device, size, batch, ref)
            if reference is not None:
                pixels = timed[PIXELS]
                source = f"{SUMMED}, {EXTRAPOLATED}" if reference.source == EXTRAPOLATED else SUMMED
                if device != "cpu":  # the reference and the pixel stage always run on the CPU
                    reference = replace(reference, source=f"{reference.source}, on cpu")
                    source += ", on cpu"
                rows += [reference, Row(device, "post_sample", POST_REF, size, batch,
                                        reference.median_s + pixels.median, reference.best_s + pixels.best,
                                        0, source)]
    return rows


def _stage1_rows(device: str, args: argparse.Namespace) -> list[Row]:
    rows = []
    for size in args.sizes:
        for batch in args.batches:
            Log.progress(f"{device}: stage 1, latent {size}², batch {batch}")
            case = make_case(size, batch, device)
            calls = {HARD: case.hard_blend, FLOAT64: case.stage1_float64, UPSTREAM: case.stage1_upstream,
                     OURS: case.stage1}
            timed = measure_together(calls, device, budget_s=args.budget, min_repeats=args.min_repeats)
            rows += [_row(device, "stage1", name, size, batch, t) for name, t in timed.items()]
    return rows


def _lookup(rows: Sequence[Row], device: str, method: str, size: int, batch: int) -> Row | None:
    key = (device, method, size, batch)
    return next((r for r in rows if (r.device, r.method, r.latent_size, r.batch) == key), None)


def _post_sample_table(rows: Sequence[Row], device: str, args: argparse.Namespace) -> str:
    body = []
    for size in args.sizes:
        for batch in args.batches:
            masks, masks_ref, pixels, post, post_ref = (
                _lookup(rows, device, m, size, batch) for m in (MASKS, MASKS_REF, PIXELS, POST, POST_REF))
            body.append([
                f"{size}²", str(batch), f"{size * 8}²",
                format_seconds(masks.median_s), format_seconds(*_fig(masks_ref)),
                format_ratio(_val(masks_ref), masks.median_s, _src(masks_ref)),
                format_seconds(pixels.median_s), format_seconds(post.median_s),
                format_seconds(*_fig(post_ref)), format_ratio(_val(post_ref), post.median_s, _src(post_ref)),
            ])
    return report.table(["latent", "batch", "picture", "masks: ours", "masks: per-pixel", "speed-up",
                         "pixel stage", "post_sample: ours", "post_sample: per-pixel", "speed-up"], body)


def _val(row: Row | None) -> float | None:
    return None if row is None else row.median_s


def _src(row: Row | None) -> str:
    return MEASURED if row is None else row.source


def _fig(row: Row | None) -> tuple[float | None, str]:
    return _val(row), _src(row)


def _stage1_table(rows: Sequence[Row], device: str, args: argparse.Namespace) -> str:
    body = []
    for size in args.sizes:
        for batch in args.batches:
            hard, f64, upstream, ours = (_lookup(rows, device, m, size, batch)
                                         for m in (HARD, FLOAT64, UPSTREAM, OURS))
            body.append([f"{size}²", str(batch),
                         *(format_seconds(r.median_s) for r in (hard, f64, upstream, ours)),
                         format_ratio(ours.median_s, hard.median_s),
                         format_ratio(f64.median_s, ours.median_s),
                         format_ratio(upstream.median_s, ours.median_s)])
    return report.table(["latent", "batch", "hard blend", "float64", "upstream", "ours", "ours ÷ hard",
                         "float64 ÷ ours", "upstream ÷ ours"], body)


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def _key_figures(rows: Sequence[Row], devices: Sequence[str], batches: Sequence[int], log: Log) -> None:
    """The figures the README quotes, where this run measured them.

    Only the whole post-sample hook (the wait a user sees) and stage 1 against float64 carry a
    target and a verdict. The difference masks are reported as ratios alone: the former 1000×
    target against the per-pixel reference is retired (on a 2-core CPU the filter sits at the
    eager-PyTorch floor, and the hook as a whole is what a user waits for).
    """
    count = len(log.lines)
    masks, ref = _lookup(rows, "cpu", MASKS, 128, 1), _lookup(rows, "cpu", MASKS_REF, 128, 1)
    if masks and ref:
        log(f"- difference masks, latent 128² batch 1 (cpu): ours {format_seconds(masks.median_s)}, "
            f"per-pixel reference {format_seconds(ref.median_s, ref.source)} ({ref.source}): "
            f"{format_ratio(ref.median_s, masks.median_s, ref.source)} faster")
    post = _lookup(rows, "cpu", POST, 128, 1)
    if post:
        log(f"- whole post_sample, picture 1024² batch 1 (cpu): {format_seconds(post.median_s)} "
            f"(target < 0.1 s: {_verdict(post.median_s < 0.1)})")
    for device in devices:
        cuda = torch.device(device).type == "cuda"
        goal = 2.0 if cuda else 1.0
        for size in (128, 512):
            for batch in batches:
                ours, f64, hard = (_lookup(rows, device, m, size, batch) for m in (OURS, FLOAT64, HARD))
                if ours and f64 and hard:
                    log(f"- stage 1, latent {size}² batch {batch} ({device}): float64 ÷ ours = "
                        f"{format_ratio(f64.median_s, ours.median_s)} (target >= {goal:g}×: "
                        f"{_verdict(f64.median_s >= goal * ours.median_s)}); ours ÷ hard blend = "
                        f"{format_ratio(ours.median_s, hard.median_s)}")
    if len(log.lines) == count:
        log("- (none of the key cases was part of this run)")


def _built_in(path: Path, size: int, repeats: int, log: Log) -> list[dict[str, object]]:
    """Ours against the built-in extension's own code, timed in this run (ratios, no verdict)."""
    from . import upstream

    Log.progress(f"the built-in's code, latent {size}², batch 1")
    figures = []
    log(f"Against the built-in extension's own code ({path.name}), latent {size}² "
        f"(picture {size * 8}²), batch 1, cpu:")
    for name, ours, theirs in upstream.speed(upstream.load_upstream(path), size, repeats):
        log(f"- {name}: ours {format_seconds(ours)}, built-in {format_seconds(theirs)}: "
            f"{format_ratio(theirs, ours)} faster")
        figures.append({"what": name, "ours_s": ours, "built_in_s": theirs})
    return figures


def _memory(args: argparse.Namespace, log: Log) -> dict[str, object]:
    Log.progress(f"memory, latent {args.memory_size}², batch {args.memory_batch} (fresh process)")
    mem = measure_in_subprocess(args.memory_size, args.memory_batch, args.threads)
    log(f"Peak extra memory, picture {mem['picture_size']}², batch {mem['batch']} "
        f"(latent {mem['latent_size']}², resident memory of a fresh process, "
        f"{mem['post_sample']['method']}):")
    for name in ("difference_masks", "post_sample"):
        part = mem[name]
        log(f"- {name}: peak {part['peak_extra_mib']:.3g} MiB, of which the results keep "
            f"{part['retained_mib']:.3g} MiB")
    log(f"  for scale: one float32 map of the batch is {mem['one_map_mib']:.3g} MiB, 25 of them "
        f"{mem['25_maps_mib']:.3g} MiB; both latents {mem['latents_mib']:.3g} MiB")
    return mem


def _cuda_memory(args: argparse.Namespace, log: Log) -> dict[str, float]:
    """Peak extra CUDA memory of the difference masks (the part of the hook that runs on the GPU)."""
    device = torch.device("cuda")
    case = make_case(args.memory_size, args.memory_batch, device)
    case.difference_masks()  # warm-up: kernels, workspaces
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    masks = case.difference_masks()
    torch.cuda.synchronize(device)
    figures = {"peak_extra_mib": (torch.cuda.max_memory_allocated(device) - before) / 2**20,
               "retained_mib": (torch.cuda.memory_allocated(device) - before) / 2**20}
    del masks
    log(f"- difference_masks on CUDA: peak {figures['peak_extra_mib']:.3g} MiB of GPU memory allocated by "
        f"torch (max_memory_allocated), of which the result keeps {figures['retained_mib']:.3g} MiB")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    log = Log()
    log(f"Soft inpainting benchmarks — {_machine()}")
    other_work = OtherWork()
    log(f"latent sizes {list(args.sizes)}, batches {list(args.batches)}, devices {args.devices}, "
        f"median of >= {args.min_repeats} calls / {args.budget:g} s per figure; the figures compared in "
        f"one table row are timed in alternating rounds")

    ref = _reference_per_pixel(args.sizes, args.reference_max, args)
    rows: list[Row] = []
    for device in args.devices:
        rows += _post_sample_rows(device, args, ref)
        rows += _stage1_rows(device, args)
        Log.progress(f"{device}: ComfyUI step, latent {comfy.SIZE}²")
        rows += comfy.rows(device, args.budget, args.min_repeats)
        Log.progress(f"{device}: 16-channel latents, latent {channels.SIZE}²")
        rows += channels.rows(device, args.budget, args.min_repeats)

    for device in args.devices:
        log()
        log(f"(a) After sampling, once per batch — {device}"
            + (" (the per-pixel reference and the pixel stage run on the CPU)" if device != "cpu" else ""))
        log(_post_sample_table(rows, device, args))
        log()
        log(f"(b) Every sampler step: get_modified_nmask + latent_blend — {device}")
        log(_stage1_table(rows, device, args))
        log()
        log(f"(c) ComfyUI, every sampler step: the patched blend against its own hard blends — {device}")
        log(comfy.table(rows, device))
        log()
        log(f"(d) 16-channel latents (SD3, Flux) beside 4-channel ones: every step — {device}")
        log(channels.step_table(rows, device))
        log(f"    and the difference masks after sampling — {device}")
        log(channels.masks_table(rows, device))
        for line in channels.key_figures(rows, device):
            log(line)
    log()
    log("16-channel columns: blend = get_modified_nmask + latent_blend; flow step = the diffusers "
        "adapter's per-step work on a flow model's output (x̂₀, the blend, the velocity back), on "
        "[B, 16, h, w] latents or on Flux's packed [B, (h/2)(w/2), 64] tokens (unpacked for the blend); "
        "masks packed = Flux's packed latents unpacked, then the difference masks.")
    log("Stage 1 columns: float64 = upstream's float64 formulation with our channel-norm kernels; "
        "upstream = the same with torch.norm, as upstream calls it; hard blend = the host's "
        "b·nmask + a·(1 − nmask) without soft inpainting.")
    if ref:
        log(f"~ = extrapolated by pixel count from the per-pixel reference's cost at latent {max(ref)}², "
            f"batch 1; its post_sample figure is its masks plus the measured pixel stage.")
    log()
    log("Key figures:")
    _key_figures(rows, args.devices, args.batches, log)
    if args.upstream is not None:
        log()
        built_in = _built_in(args.upstream, args.upstream_size, args.upstream_repeats, log)
        (args.out / "built_in.json").write_text(json.dumps(built_in, indent=2), encoding="utf-8")

    mem = None
    if not args.no_memory:
        log()
        mem = _memory(args, log)
        if any(torch.device(d).type == "cuda" for d in args.devices):
            mem["cuda_difference_masks"] = _cuda_memory(args, log)

    report.write_csv(rows, args.out / "timings.csv")
    written = ["timings.csv"] + (["built_in.json"] if args.upstream is not None else [])
    if mem is not None:
        (args.out / "memory.json").write_text(json.dumps(mem, indent=2), encoding="utf-8")
        written.append("memory.json")
    if not args.no_plot:
        if report.plot(rows, args.out / "timings.png", _machine()):
            written.append("timings.png")
        else:
            log("(no plot: matplotlib is not installed)")
    written.append("report.txt")
    log()
    log(other_work.summary())
    log(f"Wrote {', '.join(written)} to {args.out}")
    (args.out / "report.txt").write_text("\n".join(log.lines) + "\n", encoding="utf-8")
    return 0
