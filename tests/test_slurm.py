"""The Slurm path: the smoke grid through snakemake-executor-plugin-slurm on a real Slurm.

Runs wherever a Slurm cluster answers (`sinfo`, and `sacct` for the job states);
skipped with the reason elsewhere, except in CI (CI=true), where a missing cluster
is a failure: CI starts a one-node cluster with scripts/slurm/start-local-slurm.sh.

What it proves:
- `snakemake --profile workflow/profiles/slurm` runs the whole smoke DAG, report
  included, with every job submitted to Slurm: the accounting (sacct) lists every
  Slurm job the run submitted, under the run's name, as COMPLETED, and every rule
  of the DAG was among them;
- the tables equal those of a local run (`snakemake --cores N`), apart from
  wall-clock columns;
- a job that fails on Slurm makes the run fail, with the rule named.

On a real cluster, set RNNGRAD_SLURM_ACCOUNT and RNNGRAD_SLURM_PARTITION when the
defaults (your first account in sacctmgr, the default partition) are not right.
RNNGRAD_SLURM_TEST_TIMEOUT (seconds, default 900) bounds each Slurm run: a run that
has not ended by then is stopped, its Slurm jobs cancelled, and the test fails.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.ci import skip_unless_ci
from tests.workflow_helpers import copy_workflow

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "workflow" / "profiles" / "slurm"
SMOKE = "config/smoke.yaml"
BIN = Path(sys.executable).parent  # the venv's bin: snakemake, and python for the jobs
TIMEOUT = int(os.environ.get("RNNGRAD_SLURM_TEST_TIMEOUT", "900"))
DAG_RULES = {"probe_init", "train", "aggregate", "figure", "report"}
# Columns that measure the machine, not the experiment: they differ between any two runs.
VOLATILE = re.compile(
    r"wall|seconds|elapsed|per_second|time|duration|h:m:s|max_(rss|vms|uss|pss)|io_(in|out)"
    r"|mean_load|cpu_|host|node|resumed_from"
)


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _slurm_problem() -> str | None:
    """Why no usable Slurm cluster answers here, or None when one does."""
    for tool in ("sinfo", "sbatch", "sacct"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH"
    try:
        nodes = _run(["sinfo", "-h", "-o", "%t"])
        if nodes.returncode != 0:
            return f"`sinfo` failed: {nodes.stderr.strip()}"
        if not set(nodes.stdout.split()) & {"idle", "mix", "alloc"}:
            return f"no node is up (sinfo states: {' '.join(nodes.stdout.split()) or 'none'})"
        acct = _run(["sacct", "-n", "-X", "-S", "now-1minutes"])
        if acct.returncode != 0:
            return f"`sacct` failed (no job accounting?): {acct.stderr.strip()}"
    except subprocess.TimeoutExpired as err:
        return f"`{' '.join(err.cmd)}` did not answer in {err.timeout} s"
    return None


@pytest.fixture(scope="module")
def cluster() -> dict:
    """Account, partition and CPUs per node of the Slurm cluster the tests submit to."""
    problem = _slurm_problem()
    if problem:
        msg = (
            f"no Slurm cluster answers here: {problem}. "
            "To try the Slurm path on this machine: sudo scripts/slurm/start-local-slurm.sh"
        )
        skip_unless_ci(msg, "the Slurm test must run")
    account = os.environ.get("RNNGRAD_SLURM_ACCOUNT") or _first_account()
    partition = os.environ.get("RNNGRAD_SLURM_PARTITION") or _default_partition()
    cpus = _run(["sinfo", "-h", "-p", partition, "-o", "%c"]).stdout.split()
    return {
        "account": account,
        "partition": partition,
        # one Slurm job may not ask for more CPUs than a node has
        "cpus": min(int(c.rstrip("+")) for c in cpus) if cpus else 1,
    }


def _first_account() -> str:
    out = _run(["sacctmgr", "-n", "-P", "show", "assoc", f"user={getpass.getuser()}",
                "format=account"]).stdout.split()  # fmt: skip
    return out[0] if out else ""


def _default_partition() -> str:
    for name in _run(["sinfo", "-h", "-o", "%P"]).stdout.split():
        if name.endswith("*"):
            return name.rstrip("*")
    pytest.fail("the Slurm cluster has no default partition: set RNNGRAD_SLURM_PARTITION")


def _overlay(dest: Path, cluster: dict) -> Path:
    """A profile that fills in what the user fills in: account and partition.

    Passed after workflow/profiles/slurm; Snakemake then takes its default-resources
    (the whole key) from here, so the profile's own defaults are copied in.
    """
    base = yaml.safe_load((PROFILE / "config.yaml").read_text())
    resources = dict(base.get("default-resources") or {})
    resources["slurm_partition"] = cluster["partition"]
    if cluster["account"]:
        resources["slurm_account"] = cluster["account"]
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump({"default-resources": resources}))
    return dest


def _env() -> dict:
    env = dict(os.environ)
    # Slurm jobs inherit this environment (sbatch --export=ALL): venv first on PATH.
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for key in [k for k in env if k.startswith("SLURM_")]:
        del env[key]  # when the tests themselves run inside a Slurm job
    return env


def _slurm_run(args: list[str], cwd: Path, cluster: dict, overlay: Path) -> dict:
    """Run snakemake with the Slurm profile; stop it and cancel its jobs after TIMEOUT."""
    cmd = [
        str(BIN / "snakemake"),
        "--profile", str(PROFILE),
        "--profile", str(overlay),
        "--cores", str(cluster["cpus"]),
        # the first status check after 2 s instead of 40 s: a short run ends sooner
        "--slurm-init-seconds-before-status-checks", "2",
        *args,
    ]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=TIMEOUT)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGINT)  # Snakemake cancels its Slurm jobs on Ctrl-C
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
    wall = time.monotonic() - start
    run_id = re.search(r"SLURM run ID: (\S+)", output)
    if timed_out:
        # why the jobs did not run (pending for what, node state), read before cancelling
        queue = _run(["squeue", "-o", "%i %j %T %M %R"]).stdout
        nodes = _run(["sinfo", "-N", "-o", "%N %T %C %m %E"]).stdout
        if run_id:
            _run(["scancel", "--name", run_id.group(1)])
        pytest.fail(
            f"the Slurm run did not end in {TIMEOUT} s:\n{output[-5000:]}\n"
            f"squeue (JOBID NAME STATE TIME REASON):\n{queue}\n"
            f"sinfo (NODE STATE CPUS(A/I/O/T) MEMORY REASON):\n{nodes}",
            pytrace=False,
        )
    return {
        "returncode": proc.returncode,
        "output": output,
        "wall": wall,
        "run_id": run_id.group(1) if run_id else None,
        "jobids": re.findall(r"has been submitted with SLURM jobid (\d+)", output),
    }


def _accounting(jobids: list[str], done: set[str], wait: float = 60) -> dict[str, dict]:
    """sacct rows of `jobids`, waiting until each is in a state of `done` (or `wait` s)."""
    deadline = time.monotonic() + wait
    while True:
        out = _run(["sacct", "-n", "-P", "-X", "-j", ",".join(jobids),
                    "-o", "JobID,JobName,State,ExitCode,Elapsed,Comment"]).stdout  # fmt: skip
        rows = {}
        for line in out.splitlines():
            jobid, name, state, exitcode, elapsed, comment = line.split("|", 5)
            rows[jobid] = {"name": name, "state": state.split()[0], "exit": exitcode,
                           "elapsed": elapsed, "comment": comment}  # fmt: skip
        if all(rows.get(j, {}).get("state") in done for j in jobids):
            return rows
        if time.monotonic() > deadline:
            return rows
        time.sleep(2)


def _rules_submitted(output: str) -> set[str]:
    """Rules of the jobs sent to Slurm, from the Slurm log paths Snakemake prints.

    A lone job logs to .../rule_<rule>/..., a group job to .../group_<group>_<rule>_<rule>/...
    """
    names = re.findall(r"SLURM jobid \d+ \(log: \S*?/(?:rule|group)_([A-Za-z0-9_]+)/", output)
    return {r for r in DAG_RULES for n in names if re.search(rf"(^|_){r}(_|$)", n)}


def _read_tables(results: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted((results / "tables").glob("*.parquet"))}


def _comparable(df: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in df.columns if not VOLATILE.search(str(c).lower())]
    df = df[keep]
    keys = [c for c in keep if not pd.api.types.is_float_dtype(df[c])]
    with contextlib.suppress(TypeError):  # unorderable objects: keep the written order
        df = df.sort_values(keys, kind="stable") if keys else df
    return df.reset_index(drop=True)


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory) -> dict:
    work = copy_workflow(tmp_path_factory.mktemp("slurm"))
    overlay = _overlay(tmp_path_factory.mktemp("profile"), cluster)
    run = _slurm_run(["--configfile", SMOKE], work, cluster, overlay)
    assert run["returncode"] == 0, f"the Slurm smoke run failed:\n{run['output'][-8000:]}"
    run["work"] = work
    return run


def test_every_job_ran_on_slurm(slurm_run):
    run = slurm_run
    assert run["run_id"], "the Slurm executor did not start (no 'SLURM run ID' in the output)"
    assert run["jobids"], f"no job was submitted to Slurm:\n{run['output'][-4000:]}"
    assert (run["work"] / "results" / "report" / "report.html").is_file()

    rows = _accounting(run["jobids"], done={"COMPLETED"})
    missing = sorted(set(run["jobids"]) - set(rows))
    assert not missing, f"Slurm jobs unknown to the accounting: {missing}"
    bad = {j: r for j, r in rows.items() if r["state"] != "COMPLETED" or r["exit"] != "0:0"}
    assert not bad, f"Slurm jobs that did not complete: {bad}"
    # every job of this run's name went through Snakemake's submission, and back
    named = _run(["sacct", "-n", "-P", "-X", "--name", run["run_id"], "-S", "now-1day",
                  "-o", "JobID"]).stdout.split()  # fmt: skip
    assert sorted(named, key=int) == sorted(run["jobids"], key=int)
    sent = _rules_submitted(run["output"])
    assert sent >= DAG_RULES, f"rules never sent to Slurm: {sorted(DAG_RULES - sent)}"

    # what a reader of the CI log wants to know: the cost of going through Slurm
    print(
        f"\nSlurm smoke run: {run['wall']:.0f} s, {len(run['jobids'])} Slurm jobs, "
        f"each (sacct Elapsed): {' '.join(sorted(r['elapsed'] for r in rows.values()))}"
    )


def test_tables_equal_local_run(slurm_run, smoke_run):
    """`smoke_run` (conftest): the same grid run locally, as `make smoke` does."""
    slurm = _read_tables(slurm_run["work"] / "results")
    local = _read_tables(smoke_run / "results")
    assert local, "the local run wrote no tables"
    assert sorted(slurm) == sorted(local)
    for name in local:
        a, b = _comparable(slurm[name]), _comparable(local[name])
        assert list(a.columns) == list(b.columns), name
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=0, obj=name)


FAILING_SNAKEFILE = """\
rule all:
    input: "ok.txt", "never.txt"

rule fine:
    output: "ok.txt"
    shell: "echo fine > {output}"

rule doomed:
    output: "never.txt"
    shell: "echo 'doomed: failing on purpose' >&2; exit 3"
"""


def test_failing_job_fails_the_run_naming_the_rule(cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(FAILING_SNAKEFILE)
    overlay = _overlay(tmp_path / "profile", cluster)
    run = _slurm_run(["--retries", "0"], tmp_path, cluster, overlay)
    assert run["returncode"] != 0, f"the run succeeded despite a failing job:\n{run['output']}"
    assert re.search(r"Error in rule doomed:", run["output"]), run["output"][-4000:]
    assert run["jobids"], "the failing job was not submitted to Slurm"
    rows = _accounting(run["jobids"], done={"COMPLETED", "FAILED"})
    states = sorted(r["state"] for r in rows.values())
    assert states == ["COMPLETED", "FAILED"], f"sacct states: {rows}"
    assert (tmp_path / "ok.txt").is_file()
