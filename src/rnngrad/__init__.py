"""rnngrad: vanishing and exploding gradients in recurrent networks, measured."""

from importlib.metadata import version as _version

__version__ = _version("rnngrad")
