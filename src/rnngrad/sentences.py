"""The report's sentences: jinja2 macros in report/prose.md.j2, filled with findings.

A writer changes a sentence in report/prose.md.j2, the one file of wording, without
reading Python: each `{% macro name(values) %}` there is one sentence (or clause) of
the report, and the report asks for it by name, e.g. `say("clipping", clip=clip)`.
Numbers and lists go through the helpers of `rnngrad.prose`, which the macros use as
filters (`{{ x | fmt }}`, `{{ n | counted("run") }}`, `{{ names | codes }}`).

Values arrive as the findings return them; a DataFrame becomes its list of rows (each
row a dict, so a macro reads `r.variant`) and a Series one dict. A sentence is one
line of Markdown: the macro's line breaks and indentation collapse to single spaces.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2
import pandas as pd

from rnngrad import prose
from rnngrad.findings.design import VERDICT_WORDS

__all__ = ["TEMPLATES", "Sentences"]

# The wording beside the report in a source checkout (rnngrad is installed editable);
# the report itself reads the copy beside it, which is what its renderer copied.
TEMPLATES = Path(__file__).resolve().parents[2] / "report" / "prose.md.j2"

_FILTERS = ("fmt", "pct", "counted", "listing", "code", "codes", "interval", "length_bound")
_GLOBALS = ("steps_budget", "grouped", "NA")


def _missing(x) -> bool:
    # an absent value (a key a row lacks) reads as missing, like None or NaN
    return isinstance(x, jinja2.Undefined) or prose.missing(x)


@cache
def _environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,  # a misspelt value is an error, not a blank
        autoescape=False,  # Markdown, not HTML
        extensions=["jinja2.ext.do"],
        auto_reload=True,  # a writer's edit is seen by the next sentence
    )
    env.filters.update({name: getattr(prose, name) for name in _FILTERS})
    env.globals.update({name: getattr(prose, name) for name in _GLOBALS})
    env.globals["VERDICT_WORDS"] = VERDICT_WORDS  # the outcome classes, as the tables word them
    env.tests["missing"] = _missing
    return env


def _plain(value):
    if isinstance(value, pd.DataFrame):
        return value.to_dict("records")
    if isinstance(value, pd.Series):
        return value.to_dict()
    return value


class Sentences:
    """The macros of one wording file, rendered by name.

    Args:
        path: the jinja2 file of macros (default: report/prose.md.j2).

    Example:
        >>> say = Sentences()
        >>> say("per_decade", rate=-0.25)
        'shrinks tenfold every 4 steps'
    """

    def __init__(self, path: str | Path = TEMPLATES):
        self.path = Path(path).resolve()
        if not self.path.is_file():
            raise FileNotFoundError(f"wording file not found: {self.path}")

    def _module(self):
        env = _environment(self.path.parent)
        return env.get_template(self.path.name).module

    @property
    def names(self) -> list[str]:
        """The sentences the file defines."""
        module = self._module()
        return sorted(
            n for n in dir(module) if isinstance(getattr(module, n), jinja2.runtime.Macro)
        )

    def __call__(self, name: str, /, **values) -> str:
        """Sentence `name` filled with `values`, as one line of Markdown.

        Raises:
            KeyError: no macro of that name (the message lists those there are).
            ValueError: the sentence came out empty (Quarto would show the inline
                expression itself in the page).
            jinja2.UndefinedError: the macro reads a value it was not given.
        """
        macro = getattr(self._module(), name, None)
        if not isinstance(macro, jinja2.runtime.Macro):
            raise KeyError(f"no sentence {name!r} in {self.path}; options are {self.names}")
        text = " ".join(str(macro(**{k: _plain(v) for k, v in values.items()})).split())
        if not text:
            raise ValueError(f"sentence {name!r} of {self.path} rendered empty for {values}")
        return text
