"""The `rnngrad` command: train one run, probe at initialisation, aggregate the results
into tables, draw a figure, render the report; list variants, check or plan a config.

The Snakemake workflow calls the same library functions; this command is for
running or debugging one piece by hand.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rnngrad import config as cfgmod
from rnngrad.specs import TASKS

DEFAULT_CONFIG = "config/config.yaml"

EPILOG = """\
examples:
  rnngrad variants                         list the variants of config/config.yaml
  rnngrad check-config config/smoke.yaml   validate a config without running anything
  rnngrad plan config/config.yaml          estimate the grid's CPU-hours before running it
  rnngrad schema                           regenerate the config's JSON schema from the model
  rnngrad train --task adding --length 50 --variant lstm --seed 0 --out /tmp/run
  rnngrad train --task copy --length 20 --variant gru --seed 1 --steps 200 --out /tmp/r
  rnngrad probe --task adding --length 500 --variant rnn --seeds 10 --out /tmp/p.parquet
  rnngrad aggregate --results results      the tables of a results folder (results/tables)
  rnngrad figure decay_init                one figure from results/tables (results/figures)
  rnngrad render                           the report from results/tables and results/figures

Settings not given on the command line come from the config's `train:` section;
variants come from its `variants:` mapping. The whole grid runs with `snakemake --cores 8`.
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"experiment config (YAML) with the variants and defaults (default: {DEFAULT_CONFIG})",
    )


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, choices=sorted(TASKS), help="long-range task")
    p.add_argument(
        "--length", required=True, type=int, metavar="T", help="dependency length T (>= 2)"
    )
    p.add_argument(
        "--variant",
        required=True,
        metavar="NAME",
        help="a variant of the config (see `rnngrad variants`)",
    )
    p.add_argument("--threads", type=int, default=1, metavar="N", help="torch threads (default: 1)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the config's device")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnngrad",
        description="Train and probe recurrent networks on long-range tasks: how dL/dh_t decays with distance.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train one run and write its summary, curve and probes")
    _common(p)
    _run_args(p)
    p.add_argument("--seed", type=int, default=0, help="seed of weights and batches (default: 0)")
    p.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="folder for the run's files"
    )
    p.add_argument("--steps", type=int, metavar="N", help="override the config's train.steps")
    p.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="checkpoint file (default: DIR/.checkpoint.pt)",
    )
    p.add_argument("--no-probe", action="store_true", help="skip gradient probes during training")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "probe", help="probe dL/dh_t at initialisation over several seeds (no training)"
    )
    _common(p)
    _run_args(p)
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        metavar="N",
        help="number of seeds 0..N-1 (default: config probes.seeds)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="B",
        help="probe batch (default: config probes.batch_size)",
    )
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="output parquet file")

    p = sub.add_parser(
        "aggregate", help="build the tables from a results folder's runs, probes and benchmarks"
    )
    _common(p)
    p.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="results folder with runs/, probes/, benchmarks/ (default: results)",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="tables folder (default: DIR/tables)")

    p = sub.add_parser("figure", help="draw one figure (png and svg) from the tables")
    _common(p)
    p.add_argument("name", help="a figure of rnngrad.figures.FIGURES")
    p.add_argument("--tables", type=Path, default=Path("results/tables"), metavar="DIR")
    p.add_argument(
        "--out",
        type=Path,
        metavar="STEM",
        help="output path without extension (default: results/figures/NAME)",
    )

    p = sub.add_parser(
        "render", help="render the report to self-contained HTML (Quarto when on PATH)"
    )
    _common(p)
    p.add_argument("--qmd", type=Path, default=Path("report/report.qmd"), metavar="FILE")
    p.add_argument("--tables", type=Path, default=Path("results/tables"), metavar="DIR")
    p.add_argument("--figures", type=Path, default=Path("results/figures"), metavar="DIR")
    p.add_argument("--out", type=Path, default=Path("results/report/report.html"), metavar="FILE")
    p.add_argument("--renderer", default="auto", choices=["auto", "quarto", "jupyter-fallback"])

    p = sub.add_parser("variants", help="list the variants defined in a config")
    _common(p)

    p = sub.add_parser(
        "check-config", help="validate a config file; exit 1 with the key named if it is bad"
    )
    p.add_argument("config", type=Path, metavar="FILE")

    p = sub.add_parser(
        "schema", help="write the config's JSON schema, generated from rnngrad.settings.Config"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=cfgmod.SCHEMA_PATH,
        metavar="FILE",
        help="where to write it (default: the package's schemas/config.schema.yaml)",
    )

    p = sub.add_parser(
        "plan", help="estimate a config's training runs, CPU-hours and wall time before a run"
    )
    p.add_argument("config", type=Path, metavar="FILE")
    p.add_argument(
        "--cores",
        type=_positive_int,
        default=8,
        metavar="N",
        help="cores the grid runs on, for the wall time (default: 8)",
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _cmd_train(args, cfg: dict) -> int:
    # torch is imported by the commands that run it, so `variants` and `check-config` start fast
    from rnngrad.train import train_run

    point = cfgmod.GridPoint(args.task, args.length, args.variant, args.seed)
    spec = cfgmod.run_spec(cfg, point, threads=args.threads, steps=args.steps, device=args.device)
    summary = train_run(
        spec,
        args.out,
        checkpoint=args.checkpoint,
        config_hash=cfgmod.config_hash(cfg),
        probe=not args.no_probe,
        progress=not args.quiet,
    )
    metric = summary["test_metric"]
    shown = "n/a" if metric is None else f"{metric:.4g}"
    early = ", stopped early" if summary["stopped_early"] else ""
    print(
        f"{spec.task} T={spec.length} {spec.variant} seed={spec.seed}: {summary['status']} "
        f"after {summary['steps_done']} steps{early}, test {summary['metric_name']} {shown} "
        f"on {summary['test_size']} held-out examples -> {args.out}"
    )
    return 0


def _cmd_probe(args, cfg: dict) -> int:
    import torch

    from rnngrad.io import write_parquet
    from rnngrad.probes import init_probe
    from rnngrad.train import resolve_device

    c = cfgmod.typed(cfg)
    if args.variant not in c.variants:
        raise cfgmod.ConfigError(
            f"unknown variant {args.variant!r}; defined variants are {sorted(c.variants)}"
        )
    torch.set_num_threads(args.threads)
    settings = cfgmod.probe_settings(c)
    seeds = args.seeds if args.seeds is not None else settings.seeds
    batch = args.batch_size if args.batch_size is not None else settings.batch_size
    device = resolve_device(args.device or c.device)
    # the probe computes in float64 whatever the model's dtype
    df = init_probe(args.task, args.length, args.variant, c.variants[args.variant], seeds, batch,
                    device, jac_examples=settings.jac_examples)  # fmt: skip
    write_parquet(args.out, df)
    print(f"{args.task} T={args.length} {args.variant}: {seeds} seeds -> {args.out}")
    return 0


def _cmd_variants(cfg: dict) -> int:
    specs = cfgmod.variant_specs(cfg)
    width = max(len(n) for n in specs)
    for name, spec in specs.items():
        clip = "-" if spec.clip_norm is None else f"{spec.clip_norm:g}"
        ring = (
            f"  r=[{spec.r_min:g}, {spec.r_max:g}] max_phase={spec.max_phase:.3g}"
            if spec.cell == "lru"
            else ""
        )
        print(
            f"{name:<{width}}  cell={spec.cell:<8} init={spec.init:<10} "
            f"constraint={spec.constraint:<10} clip_norm={clip:<5} hidden_size={spec.hidden_size}"
            + ring
        )
    return 0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 120 * 60:
        return f"{seconds / 60:.0f} min"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"


def _span(low: float, high: float) -> str:
    low_text, high_text = _duration(low), _duration(high)
    if low_text == high_text:
        return low_text
    if low_text.split()[1] == high_text.split()[1]:
        return f"{low_text.split()[0]} to {high_text}"
    return f"{low_text} to {high_text}"


def _hours(hours: float) -> str:
    return f"{hours:.0f}" if hours >= 10 else f"{hours:.1f}" if hours >= 0.1 else f"{hours:.2g}"


def _cmd_plan(args, cfg: dict) -> int:
    from rnngrad.plan import plan, plan_summary

    df = plan(cfg)
    s = plan_summary(df, cores=args.cores)
    width = max(len(v) for v in df["variant"])
    print(
        f"{'task':<7} {'variant':<{width}} {'cell':<8} {'H':>4} {'runs':>7}  training CPU      probes"
    )
    for r in df.itertuples():
        runs = f"{r.runs_min}-{r.runs_max}" if r.runs_max else "-"
        train = _span(r.cpu_seconds_min, r.cpu_seconds_max) if r.runs_max else "-"
        probes = _duration(r.probe_cpu_seconds) if r.probe_cpu_seconds else "-"
        print(
            f"{r.task:<7} {r.variant:<{width}} {r.cell:<8} {r.hidden_size:>4} {runs:>7}  "
            f"{train:<16}  {probes}"
        )
    print(
        f"{args.config}: {s.runs_min} to {s.runs_max} training runs, "
        f"{_hours(s.train_hours_min)} to {_hours(s.train_hours_max)} CPU-hours "
        f"(+{_hours(s.probe_hours)} for probes); on {s.cores} cores at "
        f"{s.efficiency * 100:.0f} % efficiency {_span(s.wall_hours_min * 3600, s.wall_hours_max * 3600)}"
        f" (the longest chain of jobs that follow one another: "
        f"{_span(s.chain_hours_min * 3600, s.chain_hours_max * 3600)})"
    )
    print(
        "min: the lead seed fails the first length; max: it passes every length, and the "
        "top two get every seed; every run at its full step budget (rnngrad.plan)"
    )
    return 0


def _cmd_aggregate(args, cfg: dict) -> int:
    from rnngrad.aggregate import aggregate

    out = args.out or args.results / "tables"
    tables = aggregate(args.results, out, cfg)
    print(f"{len(tables)} tables ({sum(map(len, tables.values()))} rows) -> {out}")
    return 0


def _cmd_figure(args, cfg: dict) -> int:
    from rnngrad.figures import make_figure

    out = args.out or Path("results/figures") / args.name
    paths = make_figure(args.name, args.tables, out, cfg)
    print(" ".join(map(str, paths)))
    return 0


def _cmd_render(args, cfg: dict) -> int:
    from rnngrad.render import render_report, report_params

    params = report_params(args.tables, args.figures, cfg, args.qmd.parent / "anchors.csv",
                           cfgmod.config_hash(cfg), [str(args.config)])  # fmt: skip
    used = render_report(args.qmd, args.out, params, renderer=args.renderer)
    print(f"rendered {args.out} with {used}")
    return 0


_ANALYSIS = {"aggregate": _cmd_aggregate, "figure": _cmd_figure, "render": _cmd_render}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "check-config":
            cfgmod.load_config(args.config)
            print(f"{args.config}: ok")
            return 0
        if args.command == "schema":
            from rnngrad.io import atomic_path

            with atomic_path(args.out) as tmp:
                tmp.write_text(cfgmod.schema_text())
            print(f"wrote {args.out}")
            return 0
        cfg = cfgmod.load_config(args.config)
        if args.command == "plan":
            return _cmd_plan(args, cfg)
        if args.command == "variants":
            return _cmd_variants(cfg)
        if args.command == "train":
            return _cmd_train(args, cfg)
        if args.command in _ANALYSIS:
            return _ANALYSIS[args.command](args, cfg)
        return _cmd_probe(args, cfg)
    except (cfgmod.ConfigError, ValueError, RuntimeError, OSError) as err:
        # one line, no traceback: a bad config, argument or path is the user's to fix
        text = " ".join(str(err).split())
        print(f"rnngrad {args.command}: error: {text}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
