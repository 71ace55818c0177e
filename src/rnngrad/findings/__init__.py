"""The answers of the report, one function per question: tables in, plain data out.

The report (report/report.qmd) prints what these return and computes nothing of its
own; each function has tests on small tables whose answer is known by construction
(tests/test_findings.py). No torch: only pandas and numpy.

- decay: `init_decay`, `bound_tightness`, `decay_change`, `width_effect`, `reference_decay`
- outcomes: `training_overview`, `success_by_length`, `critical_length`,
  `horizon_predicts_critical`, `budget`
- remedies: `clipping_effect`, `spectral_growth`, `constraint_check`,
  `mitigation_gains`, `cost_by_cell`
- methods: `load_tables`, `resolve_config`, `tasks_table`, `variant_table`, `grid_table`
"""

from rnngrad.findings._common import find_variant, pick, wilson
from rnngrad.findings.decay import (
    BoundTightness,
    bound_tightness,
    decay_change,
    init_decay,
    reference_decay,
    width_effect,
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
    success_by_length,
    training_overview,
)
from rnngrad.findings.remedies import (
    REMEDIES,
    CostSummary,
    clipping_effect,
    constraint_check,
    cost_by_cell,
    mitigation_gains,
    spectral_growth,
    twin,
)

__all__ = [
    "BoundTightness",
    "Budget",
    "CostSummary",
    "Overview",
    "REMEDIES",
    "bound_tightness",
    "budget",
    "clipping_effect",
    "constraint_check",
    "cost_by_cell",
    "critical_length",
    "decay_change",
    "find_variant",
    "grid_table",
    "horizon_predicts_critical",
    "init_decay",
    "load_tables",
    "mitigation_gains",
    "pick",
    "reference_decay",
    "resolve_config",
    "spectral_growth",
    "success_by_length",
    "tasks_table",
    "training_overview",
    "twin",
    "variant_table",
    "width_effect",
    "wilson",
]
