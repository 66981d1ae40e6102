"""`bench`: speed of pair, re-edit and series against the stock diffusers pipeline, then an upload's:
its PNG to the first edit, and a slider re-edit from the cached inversion (evaluation/uploads.py)."""


from pipelines.cli import arguments as common
from pipelines.editing.requests import integer

REPEATS = 3
REPEATS_RANGE = (1, 100)
THREADS_RANGE = (1, 256)
THREADS_HELP = ("torch's CPU threads (default: torch's own, one per core); on a machine others share, "
                "1 avoids threads waiting on each other")


def add_arguments(parser):
    common.add_model_arguments(parser)
    parser.add_argument("--repeats", type=int, default=REPEATS,
                        help=f"timed rounds after the warm-up (default {REPEATS})")
    parser.add_argument("--threads", type=int, default=None, help=THREADS_HELP)
    parser.add_argument("--out", default=None, help="also write the JSON report here")


def run(args) -> int:
    common.check_model_source(args)
    if args.out:
        common.check_writable_file(args.out)
    repeats = integer("--repeats", args.repeats, *REPEATS_RANGE)
    threads = None if args.threads is None else integer("--threads", args.threads, *THREADS_RANGE)
    # Imported here: torch and the model load only once the arguments have passed their checks.
    import time

    import torch

    from pipelines.evaluation.benchmark import bench
    from pipelines.evaluation.uploads import bench_uploads
    from pipelines.model.loading import load_model

    if threads is not None:
        torch.set_num_threads(threads)

    began = time.perf_counter()
    model = load_model(args.model)
    load_s = time.perf_counter() - began
    report = {"load_s": round(load_s, 3), **bench(model, repeats), "uploads": bench_uploads(model, repeats)}
    common.write_report(args, report, print_table)
    return 0


def print_table(report: dict) -> None:
    print(f"{'operation':20} {'ours s (min-max)':>22} {'stock s (min-max)':>22} {'speedup (min-max)':>20}")
    for name, op in report["operations"].items():
        cell = lambda d, digits: f"{d['median']:.{digits}f} ({d['min']:.{digits}f}-{d['max']:.{digits}f})"  # noqa: E731
        print(f"{name:20} {cell(op['ours_s'], 3):>22} {cell(op['stock_s'], 3):>22} {cell(op['speedup'], 2):>20}")
    print(f"medians of {report['repeats']} interleaved rounds after a warm-up; peak memory "
          f"{report['peak_memory_mb']:.0f} MB, load {report['load_s']:.2f} s")
    uploads = report["uploads"]
    print(f"upload ({uploads['source_size']} px PNG) to its first edit {uploads['upload_to_first_edit_s']:.3f} s "
          f"(median of {report['repeats']} after a warm-up); slider re-edit from the cached inversion "
          f"{uploads['reedit_s']:.3f} s (median of 4)")
