"""Benchmark of the Pathfinder generator: images per second, printed as JSON.

  python -m experiments.bench_pathfinder --resolution 32 --n 4000 [--workers 2] [--difficulty hard]

Writes the release layout into a temporary folder (deleted afterwards). Reports wall time and CPU time (this
process and its workers: user + system). On a shared machine wall time depends on the other load, CPU time much
less; `extrapolated_200k_on_2_free_cores_s` = 200,000 images / (2 x images per CPU second).
"""
import argparse
import json
import os
import resource
import shutil
import tempfile
import time

from lra import pathfinder_gen


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_pathfinder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, choices=pathfinder_gen.RESOLUTIONS, default=32)
    parser.add_argument("--difficulty", choices=tuple(pathfinder_gen.CONTOUR_LENGTHS), default="hard")
    parser.add_argument("--n", type=int, default=4000, help="images")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    parser.add_argument("--out", default=None, help="keep the images in this folder")
    args = parser.parse_args(argv)
    p = pathfinder_gen.lra_params(args.resolution, args.difficulty)
    workers = args.workers or pathfinder_gen.default_workers()
    out = args.out or tempfile.mkdtemp(prefix="bench_pathfinder_")
    try:
        start, cpu0 = time.perf_counter(), time.process_time()
        pathfinder_gen.generate(out, p, args.n, 0, difficulty=args.difficulty, workers=workers, log=lambda s: None)
        wall = time.perf_counter() - start
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = time.process_time() - cpu0 + children.ru_utime + children.ru_stime
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({"resolution": args.resolution, "difficulty": args.difficulty, "images": args.n,
                      "workers": workers, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                      "images_per_s_wall": round(args.n / wall, 1), "images_per_cpu_s": round(args.n / cpu, 1),
                      "extrapolated_200k_on_2_free_cores_s": round(200_000 / (2 * args.n / cpu), 1),
                      "load_average_1min": round(os.getloadavg()[0], 1)}))


if __name__ == "__main__":
    main()
