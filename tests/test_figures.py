"""rnngrad.figures: every figure writes a PNG and an SVG; styles are stable and distinct."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from rnngrad import figures
from rnngrad.aggregate import TABLES
from rnngrad.figures import FIGURE_TABLES, FIGURES, make_figure, variant_palette, variant_styles

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_each_figure_writes_png_and_svg(figures_dir, name):
    png, svg = figures_dir / f"{name}.png", figures_dir / f"{name}.svg"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert png.stat().st_size > 10_000  # a drawn figure, not a blank canvas
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")


def test_no_temporary_files_are_left(figures_dir):
    names = {p.name for p in figures_dir.iterdir()}
    assert names == {f"{n}.{ext}" for n in FIGURES for ext in ("png", "svg")}


def test_registry_declares_the_tables_each_figure_reads():
    assert set(FIGURE_TABLES) == set(FIGURES)
    for name, tables in FIGURE_TABLES.items():
        assert tables and set(tables) <= set(TABLES), name


def test_make_figure_rejects_an_unknown_name(tables_dir, tmp_path):
    with pytest.raises(ValueError, match="decay_init"):
        make_figure("nope", tables_dir, tmp_path / "nope")


def test_make_figure_names_a_missing_table(tmp_path):
    with pytest.raises(FileNotFoundError, match="success.parquet"):
        make_figure("success", tmp_path, tmp_path / "out" / "success")


def test_palette_is_sorted_colour_blind_and_shared():
    pal = variant_palette(["rnn", "lstm", "gru"])
    assert list(pal) == ["gru", "lstm", "rnn"]
    assert len(set(pal.values())) == 3
    assert variant_palette(["gru", "rnn", "lstm"]) == pal


def test_styles_stay_distinct_past_ten_variants():
    names = [f"v{i:02d}" for i in range(15)]
    styles = variant_styles(names)
    pairs = {(s["color"], s["linestyle"]) for s in styles.values()}
    assert len(pairs) == 15
    assert len({s["marker"] for s in styles.values()}) == 13  # as many as there are markers


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figures_of_an_empty_grid_still_write_both_files(tmp_path, name):
    empty = {t: pd.DataFrame() for t in TABLES}
    fn = FIGURES[name]
    kwargs = {t: empty[t] for t in FIGURE_TABLES[name] if t != "variants"}
    paths = fn(**kwargs, out_stem=tmp_path / name)
    assert [p.name for p in paths] == [f"{name}.png", f"{name}.svg"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_figure_functions_take_dataframes(tables_dir, tmp_path):
    runs = pd.read_parquet(tables_dir / "runs.parquet")
    paths = figures.loss_ratio(runs, tmp_path / "lr")
    assert [p.suffix for p in paths] == [".png", ".svg"]
