"""The answers of the report, one function per question: tables in, plain data out.

The report (report/report.qmd) prints what these return and computes nothing of its
own; each function has tests on small tables whose answer is known by construction
(tests/test_findings.py). No torch: only pandas and numpy.

- decay: `init_decay`, `decay_extremes`, `bound_tightness`, `decay_change`, `width_effect`, `reference_decay`
- outcomes: `training_overview`, `success_by_length`, `critical_length`,
  `horizon_predicts_critical`, `budget`
- remedies: `clipping_effect`, `largest_gain`, `spectral_growth`, `constraint_check`,
  `mitigation_gains`, `cost_by_cell`
- shared: `spread` (median, range, count), `pick`, `find_variant`, `wilson_interval`
- design: `verdict_grid` (solved / off / at the baseline per length), `seed_design`, `rung_table`
- scorecard: `budget_frame`, `scorecard`, `scorecard_summary`; anchors: `read_anchors`
- methods: `load_tables`, `resolve_config`, `tasks_table`, `variant_table`, `grid_table`
"""

from rnngrad.findings._common import Spread, find_variant, pick, spread
from rnngrad.findings.anchors import read_anchors
from rnngrad.findings.decay import (
    BoundTightness,
    DecayExtremes,
    bound_tightness,
    decay_change,
    decay_extremes,
    init_decay,
    reference_decay,
    width_effect,
)
from rnngrad.findings.design import (
    VERDICT_WORDS,
    SeedDesign,
    rung_table,
    seed_design,
    verdict_grid,
)
from rnngrad.findings.methods import (
    grid_table,
    load_tables,
    resolve_config,
    tasks_table,
    variant_table,
)
from rnngrad.findings.outcomes import (
    Budget,
    Overview,
    budget,
    critical_length,
    horizon_predicts_critical,
    rho_needed,
    success_by_length,
    training_overview,
)
from rnngrad.findings.remedies import (
    REMEDIES,
    CostSummary,
    KernelUse,
    clipping_effect,
    constraint_check,
    cost_by_cell,
    kernel_use,
    largest_gain,
    mitigation_gains,
    spectral_growth,
    twin,
)
from rnngrad.findings.scorecard import (
    ScorecardSummary,
    budget_frame,
    scorecard,
    scorecard_summary,
)
from rnngrad.stats import wilson_interval

__all__ = [
    "BoundTightness",
    "DecayExtremes",
    "Spread",
    "Budget",
    "CostSummary",
    "Overview",
    "REMEDIES",
    "ScorecardSummary",
    "bound_tightness",
    "budget",
    "clipping_effect",
    "constraint_check",
    "cost_by_cell",
    "KernelUse",
    "kernel_use",
    "critical_length",
    "decay_change",
    "decay_extremes",
    "find_variant",
    "grid_table",
    "horizon_predicts_critical",
    "init_decay",
    "largest_gain",
    "load_tables",
    "mitigation_gains",
    "pick",
    "read_anchors",
    "reference_decay",
    "resolve_config",
    "scorecard",
    "budget_frame",
    "verdict_grid",
    "seed_design",
    "SeedDesign",
    "rung_table",
    "VERDICT_WORDS",
    "rho_needed",
    "scorecard_summary",
    "spectral_growth",
    "spread",
    "success_by_length",
    "tasks_table",
    "training_overview",
    "twin",
    "variant_table",
    "width_effect",
    "wilson_interval",
]
