"""rnngrad.figures: the registry, the files, and the data each figure draws.

The decay, success, critical and loss-ratio figures are checked against the tables
they draw (the Line2D / collection data of their axes), not only for a PNG.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from rnngrad.aggregate import TABLES
from rnngrad.figures import (
    FIGURE_TABLES,
    FIGURES,
    draw,
    make_figure,
    variant_palette,
    variant_styles,
)
from rnngrad.figures.style import cell_group
from tests.test_findings import EXAMPLE_CONFIG, example_tables

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tables():
    return example_tables()


@pytest.fixture(scope="module")
def example_dir(tables, tmp_path_factory):
    out = tmp_path_factory.mktemp("tables")
    for name, df in tables.items():
        df.to_parquet(out / f"{name}.parquet", index=False)
    return out


@pytest.fixture(scope="module")
def drawn(example_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    for name in FIGURES:
        make_figure(name, example_dir, out / name, EXAMPLE_CONFIG)
    return out


def _lines(fig, gid):
    return [line for ax in fig.axes for line in ax.get_lines() if line.get_gid() == gid]


def _collections(fig, gid):
    return [c for ax in fig.axes for c in ax.collections if c.get_gid() == gid]


# ------------------------------------------------------------------------ registry


def test_registry_is_explicit_and_names_known_tables():
    assert set(FIGURE_TABLES) == set(FIGURES)
    for name, (fn, tables) in FIGURES.items():
        assert callable(fn), name
        assert FIGURE_TABLES[name] == tables and tables, name
        assert set(tables) <= set(TABLES), name
    assert FIGURE_TABLES["critical"] == ("critical",)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_each_figure_writes_png_and_svg(drawn, name):
    png, svg = drawn / f"{name}.png", drawn / f"{name}.svg"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert png.stat().st_size > 10_000  # a drawn figure, not a blank canvas
    assert ET.parse(svg).getroot().tag.endswith("svg")


def test_no_temporary_files_are_left(drawn):
    names = {p.name for p in drawn.iterdir()}
    assert names == {f"{n}.{ext}" for n in FIGURES for ext in ("png", "svg")}


def test_make_figure_rejects_an_unknown_name(example_dir, tmp_path):
    with pytest.raises(ValueError, match="decay_init"):
        make_figure("nope", example_dir, tmp_path / "nope")


def test_make_figure_names_a_missing_table(tmp_path):
    with pytest.raises(FileNotFoundError, match="success.parquet"):
        make_figure("success", tmp_path, tmp_path / "out" / "success")


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figures_of_an_empty_grid_still_draw(name):
    fig = draw(name, {t: pd.DataFrame() for t in TABLES})
    assert fig.axes and "in this grid" in " ".join(t.get_text() for t in fig.axes[0].texts)


def test_palette_is_sorted_colour_blind_and_shared():
    pal = variant_palette(["rnn", "lstm", "gru"])
    assert list(pal) == ["gru", "lstm", "rnn"]
    assert len(set(pal.values())) == 3
    assert variant_palette(["gru", "rnn", "lstm"]) == pal


def test_styles_stay_distinct_past_ten_variants():
    styles = variant_styles([f"v{i:02d}" for i in range(15)])
    assert len({(s["color"], s["linestyle"]) for s in styles.values()}) == 15
    assert len({s["marker"] for s in styles.values()}) == 13  # as many as there are markers


# --------------------------------------------------------------- the data drawn


def test_decay_init_draws_the_median_over_seeds_at_the_longest_length(tables):
    fig = draw("decay_init", tables, EXAMPLE_CONFIG)
    prof = tables["init_profiles"]
    for name in ("rnn", "lstm", "lru"):
        (line,) = _lines(fig, f"median:{name}")
        want = prof[(prof["variant"] == name) & (prof["length"] == 200)]
        want = want.groupby("distance")["grad_h"].median()
        x, y = line.get_data()
        np.testing.assert_array_equal(x, want.index.to_numpy())
        np.testing.assert_allclose(np.asarray(y, float), want.to_numpy(), rtol=1e-12)
    assert not _lines(fig, "bound:lstm") and _lines(fig, "bound:rnn")  # the LSTM has no bound


def test_decay_init_groups_the_diagonal_cells_and_survives_unknown_cells(tables):
    prof = tables["init_profiles"]
    odd = prof[prof["variant"] == "rnn"].assign(variant="mystery")
    variants = pd.concat(
        [tables["variants"], tables["variants"].iloc[:1].assign(variant="mystery", cell="new_cell")]
    )
    fig = draw("decay_init", {"init_profiles": pd.concat([prof, odd]), "variants": variants})
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    rows = [t.split(": ", 1)[1] for t in titles]
    assert rows == ["vanilla RNN", "LSTM", "GRU", "diagonal (LRU, minGRU, IndRNN)", "other cells"]
    diagonal = fig.axes[3]
    assert {line.get_gid() for line in diagonal.get_lines() if line.get_gid()} >= {
        "median:lru", "median:mingru", "median:indrnn"
    }  # fmt: skip
    assert cell_group("lru") == cell_group("indrnn") != cell_group("lstm")
    assert cell_group(None) == cell_group("new_cell") == "other cells"


def test_success_draws_the_solved_rate_and_hatches_cells_not_attempted(tables):
    fig = draw("success", tables)
    s = tables["success"]
    for ax, task in zip(fig.axes, ("adding", "copy"), strict=False):
        sub = s[s["task"] == task]
        want = sub.pivot(index="variant", columns="length", values="solved_rate")
        want = want.where(sub.pivot(index="variant", columns="length", values="attempted"))
        mesh = ax.collections[0].get_array()
        got = np.ma.filled(mesh.astype(float), np.nan).reshape(want.shape)
        np.testing.assert_array_equal(got, want.sort_index().to_numpy(float))
        hatched = {p.get_gid() for p in ax.patches if str(p.get_gid()).startswith("not attempted")}
        expected = {
            f"not attempted:{task}:{r.variant}:{r.length}"
            for r in sub[~sub["attempted"]].itertuples()
        }
        assert hatched == expected
        texts = [t.get_text() for t in ax.texts]
        assert texts.count("n.a.") == len(expected)
    assert any("not attempted" in t.get_text() for leg in fig.legends for t in leg.get_texts())
    assert (~s["attempted"]).sum() > 0  # the example has such cells


def test_critical_figure_draws_the_critical_lengths_and_horizons(tables):
    from rnngrad.figures.success import critical

    c = tables["critical"]
    fig = critical(c, styles=variant_styles(c["variant"]))
    adding = c[c["task"] == "adding"].set_index("variant")
    for name, r in adding.iterrows():
        if math.isnan(r["critical_length"]):
            assert _collections(fig, f"failed:{name}")
            continue
        points = [p for coll in _collections(fig, f"critical:{name}") for p in coll.get_offsets()]
        assert any(p[0] == r["critical_length"] for p in points), name
        (h,) = [line for line in _lines(fig, f"horizon_init:{name}") if line.axes is fig.axes[0]]
        assert h.get_xdata()[0] == pytest.approx(r["horizon_init_median"])
    failed = c[c["critical_length"].isna()]
    assert len(failed) and all(_collections(fig, f"failed:{v}") for v in failed["variant"])


def test_loss_ratio_draws_test_ratios_and_the_threshold(tables):
    runs = tables["runs"].copy()
    runs.loc[runs["task"] == "copy", "metric_name"] = "accuracy"
    fig = draw("loss_ratio", {"runs": runs})
    adding, copy = fig.axes[0], fig.axes[1]
    (thr,) = [line for line in adding.get_lines() if line.get_gid() == "threshold"]
    assert thr.get_ydata()[0] == pytest.approx(0.01 / (1 / 6))
    assert not [line for line in copy.get_lines() if line.get_gid() == "threshold"]
    (line,) = [ln for ln in adding.get_lines() if ln.get_gid() == "median:lstm"]
    ok = runs[(runs["task"] == "adding") & (runs["variant"] == "lstm")]
    np.testing.assert_allclose(line.get_ydata(), ok.groupby("length")["test_loss_ratio"].median())


def _titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_decay_train_shows_each_variant_at_the_longest_length_it_reached():
    # the sweep trained `far` at 10 and 20 but `near` only at 10: both must be drawn
    rows = [
        {"task": "adding", "length": L, "variant": v, "seed": 0, "probe_step": step,
         "t": L - 1 - d, "distance": d, "grad_h": 0.5**d}
        for v, lengths in (("far", (10, 20)), ("near", (10,)))
        for L in lengths for step in (0, 100) for d in range(L)
    ]  # fmt: skip
    fig = draw("decay_train", {"train_profiles": pd.DataFrame(rows), "variants": pd.DataFrame()})
    assert sorted(_titles(fig)) == ["adding, T = 10: near", "adding, T = 20: far"]


def test_grad_norm_pairs_a_clipped_variant_with_its_twin_at_a_length_both_reached():
    runs = pd.DataFrame(
        [{"task": "adding", "length": L, "variant": v, "seed": 0, "cell": "lstm",
          "init": "default", "constraint": "none", "hidden_size": 8, "clip_norm": c,
          "status": "solved", "steps_done": 3}
         for v, c, lengths in (("a", None, (10, 20)), ("a_clip", 1.0, (10,)))
         for L in lengths]
    )  # fmt: skip
    curves = pd.DataFrame(
        [{"task": r.task, "length": r.length, "variant": r.variant, "seed": 0, "step": s,
          "grad_norm": 0.5 * r.length, "clipped": r.length > 2}
         for r in runs.itertuples() for s in (1, 2, 3)]
    )  # fmt: skip
    fig = draw("grad_norm", {"curves": curves, "runs": runs})
    assert _titles(fig) == ["adding, T = 10: a_clip vs a"]
    drawn = {tuple(line.get_ydata()) for ax in fig.axes for line in ax.get_lines()}
    assert (5.0, 5.0, 5.0) in drawn and (10.0, 10.0, 10.0) not in drawn  # T = 10, not 20


def test_the_loss_ratio_figure_draws_the_findings_threshold():
    from rnngrad.figures.training import threshold_ratio

    runs = pd.DataFrame({"task": ["adding", "copy"], "metric_name": ["mse", "accuracy"],
                         "solve_threshold": [0.01, 0.99], "baseline_loss": [1 / 6, 0.17]})  # fmt: skip
    assert threshold_ratio(runs, "adding") == pytest.approx(0.06)
    assert threshold_ratio(runs, "copy") is None  # its metric is not its loss
