"""Column names of the files rnngrad writes, shared by their writers (train, probes)
and their torch-free readers (aggregate), so the two can never drift apart."""

__all__ = ["RUN_FILES", "PROFILE_COLUMNS", "HORIZON_COLUMNS", "CURVE_COLUMNS", "SPECTRA_COLUMNS"]

# The files of one training run (results/runs/.../seed{seed}/); summary.json is written last
RUN_FILES = (
    "summary.json",
    "curve.parquet",
    "gradients.parquet",
    "spectra.parquet",
    "horizon.parquet",
)

# gradients.parquet / init probes: one row per time step t (see rnngrad.probes)
PROFILE_COLUMNS = (
    "t",
    "distance",
    "grad_h",
    "grad_h_q1",
    "grad_h_q3",
    "grad_c",
    "grad_c_q1",
    "grad_c_q3",
    "jac_norm",
    "bound",
    "bound_holds",
    "tightness",
    "tightness_q90",
    "bound_examples",
)
# horizon.parquet: the final model's profile at the task's common length (probe_length)
HORIZON_COLUMNS = ("probe_step", "probe_length", *PROFILE_COLUMNS)
# curve.parquet: one row per training step (see rnngrad.train)
CURVE_COLUMNS = ("step", "loss", "metric", "eval_loss", "grad_norm", "clipped", "elapsed")
# spectra.parquet: one row per probe step and gate block of W_hh
SPECTRA_COLUMNS = ("probe_step", "gate", "spectral_norm", "spectral_radius")
