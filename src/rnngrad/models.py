"""SequenceModel: input -> recurrent core -> readout, and the variants of the benchmark.

The core is torch's fused nn.RNN / nn.LSTM / nn.GRU (cuDNN on GPU, oneDNN on CPU), or
one of the diagonal recurrences of rnngrad.cells (lru, mingru, indrnn), which train
with the scans of rnngrad.scan. `SequenceModel.unroll` runs the same recurrence one
step at a time with the core's own parameters, so the probes can keep the gradient of
every hidden state.

Initialisations and constraints:
- orthogonal: every H x H gate block of W_hh orthogonal (Saxe et al. 2014).
- identity: IRNN, W_hh = I, zero biases, ReLU cell (Le, Jaitly & Hinton 2015).
- chrono: LSTM forget bias log(U(1, T_max)), input bias its negative, with T_max the
  task's largest lag (Task.max_lag: T - 1 for adding, T + 19 for copy; Tallec & Ollivier
  2018).
- forget_bias: LSTM forget bias 1, the common practice (Gers, Schmidhuber & Cummins
  2000; Jozefowicz, Zaremba & Sutskever 2015; Keras' unit_forget_bias); torch's own
  default draws it from U(-1/sqrt(H), 1/sqrt(H)) like every other bias.
- constraint orthogonal: W_hh parametrised on the orthogonal group
  (torch.nn.utils.parametrizations.orthogonal, matrix-exponential map; Lezcano-Casado &
  Martinez-Rubio 2019), starting from the Q factor of a QR decomposition of the init's
  W_hh (signs fixed so that R has a positive diagonal).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from rnngrad.cells import CORES, scan_method
from rnngrad.settings import VariantSpec
from rnngrad.specs import CELLS, CONSTRAINTS, FUSED_CELLS, INITS, get_task

__all__ = [
    "VariantSpec",
    "SequenceModel",
    "build_model",
    "CELLS",
    "FUSED_CELLS",
    "INITS",
    "CONSTRAINTS",
]

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
# torch's gate order inside weight_hh_l0 / bias_hh_l0, one H-row block each
GATE_NAMES = {
    "rnn_tanh": ("h",),
    "rnn_relu": ("h",),
    "lstm": ("i", "f", "g", "o"),
    "gru": ("r", "z", "n"),
}
EMBED_DIM = 16  # width of the symbol embedding for symbolic tasks (copy)


class SequenceModel(nn.Module):
    """Embedding or float input -> one recurrent layer -> linear readout.

    For adding the readout reads the last hidden state (B,); for copy it reads every
    position (B, T+20, 10). The fused cells keep their module in `rnn` (and `core` is
    None); the cells of rnngrad.cells keep theirs in `core` (and `rnn` is None).
    """

    def __init__(self, spec: VariantSpec, task: str, length: int | None = None):
        super().__init__()
        self.spec = spec
        self.task = get_task(task)
        H = spec.hidden_size
        if self.task.symbolic:
            self.embed = nn.Embedding(self.task.input_size, EMBED_DIM)
            in_size = EMBED_DIM
        else:
            self.embed = None
            in_size = self.task.input_size
        self.rnn = self.core = None
        if spec.cell in ("rnn_tanh", "rnn_relu"):
            self.rnn = nn.RNN(in_size, H, batch_first=True, nonlinearity=spec.cell[4:])
        elif spec.cell == "lstm":
            self.rnn = nn.LSTM(in_size, H, batch_first=True)
        elif spec.cell == "gru":
            self.rnn = nn.GRU(in_size, H, batch_first=True)
        elif spec.cell == "lru":
            self.core = CORES["lru"](in_size, H, spec.r_min, spec.r_max, spec.max_phase)
        elif spec.cell == "indrnn":
            if length is None:
                raise ValueError(
                    "cell 'indrnn' bounds its recurrent weights by 2^(1/T) and needs the "
                    "task length T"
                )
            self.core = CORES["indrnn"](in_size, H, self.task.seq_len(length))
        else:
            self.core = CORES[spec.cell](in_size, H)
        self.readout = nn.Linear(H, self.task.output_size)

    @property
    def cell(self) -> str:
        return self.spec.cell

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Float inputs (B, T, I) for the recurrent core."""
        return self.embed(x) if self.embed is not None else x

    def head(self, hs: torch.Tensor) -> torch.Tensor:
        """Readout from hidden states (B, T, H) to task outputs."""
        if self.task.per_step_output:
            return self.readout(hs)  # (B, T, V)
        return self.readout(hs[:, -1]).squeeze(-1)  # (B,)

    def _core_head(self, states: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Task outputs from a core's states and inputs, both time-major (T, B, .)."""
        if not self.task.per_step_output:  # only the last step is read
            states, u = states[-1:], u[-1:]
        return self.head(self.core.features(states, u).transpose(0, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.inputs(x)  # (B, T, I)
        if self.core is None:
            hs, _ = self.rnn(u)  # (B, T, H)
            return self.head(hs)
        # (T, B, I) time-major in memory (I is small), so every tensor after it is too and
        # each step's slice is contiguous
        u = u.transpose(0, 1).contiguous()
        states = self.core.scan(self.core.step_inputs(u), self.core.coefficient())
        return self._core_head(states, u)

    def after_step(self) -> None:
        """Called by the training loop after every optimiser step (IndRNN's projection)."""
        if self.core is not None and hasattr(self.core, "after_step"):
            self.core.after_step()

    def scan_method(self) -> str:
        """How training runs the recurrence over time, on the model's device and dtype:
        "torch" (nn.RNN / LSTM / GRU, oneDNN or cuDNN) or the core's `scan_method`
        ("native" marks minGRU's compiled kernel, whose rounding differs from "fused")."""
        if self.core is None:
            return "torch"
        p = next(self.parameters())
        return scan_method(self.spec.cell, p.device.type, p.dtype)

    def recurrent_weight(self) -> torch.Tensor:
        """W_hh (G*H, H), through the orthogonal parametrisation when there is one.

        The diagonal cells: lambda (N,) complex for lru, w (H,) for indrnn, and an empty
        tensor for mingru, whose recurrence coefficient 1 - z_t comes from the input.
        """
        if self.core is not None:
            return self.core.coefficient()
        return self.rnn.weight_hh_l0

    def recurrent_blocks(self) -> dict[str, torch.Tensor]:
        """The square recurrent matrices whose spectra the probes record, by gate name.

        lru: {"lambda": diag(lambda)} (complex); indrnn: {"u": diag(u)}; mingru: {}.
        """
        if self.core is not None:
            return self.core.blocks()
        return gate_blocks(self.recurrent_weight(), self.spec.cell)

    def step_inputs(self, u: torch.Tensor) -> torch.Tensor:
        """W_ih u_t + b_ih for all t at once (B, T, G*H): one GEMM instead of T.

        The diagonal cells: what enters each step from the input (rnngrad.cells):
        gamma * (B e_t) (B, T, N) complex for lru, [W_z e_t + b_z, W_h e_t + b_h]
        (B, T, 2H) for mingru, W u_t + b (B, T, H) for indrnn.
        """
        if self.core is not None:
            return self.core.step_inputs(u)
        return u @ self.rnn.weight_ih_l0.T + self.rnn.bias_ih_l0

    def cell_step(self, xi: torch.Tensor, state: tuple[torch.Tensor, ...], w_hh: torch.Tensor):
        """One step of the recurrence, with the fused module's parameters and gate order.

        Args:
            xi: W_ih x_t + b_ih (B, G*H), or a step of `step_inputs` for the other cells.
            state: (h,) or (h, c) for the LSTM, each (B, H); (x,) complex for lru.
            w_hh: W_hh (G*H, H), passed in so a parametrised weight is computed once;
                `recurrent_weight()` for the other cells.

        Returns:
            the new state, same structure as `state`.
        """
        if self.core is not None:
            return self.core.cell_step(xi, state, w_hh)
        h = state[0]
        gh = h @ w_hh.T + self.rnn.bias_hh_l0  # (B, G*H)
        cell = self.spec.cell
        if cell == "rnn_tanh":
            return (torch.tanh(xi + gh),)
        if cell == "rnn_relu":
            return (torch.relu(xi + gh),)
        if cell == "lstm":
            i, f, g, o = (xi + gh).chunk(4, dim=-1)
            c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
            return (torch.sigmoid(o) * torch.tanh(c), c)
        xr, xz, xn = xi.chunk(3, dim=-1)
        hr, hz, hn = gh.chunk(3, dim=-1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return ((1 - z) * n + z * h,)

    def initial_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Zeros, of `like`'s dtype and device (complex for lru: `like` is its step input)."""
        if self.core is not None:
            return (like.new_zeros(batch, self.core.state_size),)
        h = like.new_zeros(batch, self.spec.hidden_size)
        return (h, h.clone()) if self.spec.cell == "lstm" else (h,)

    def unroll(self, x: torch.Tensor, states_hook=None):
        """Run the recurrence step by step; equal to `forward` up to float rounding.

        Args:
            x: a task batch.
            states_hook: called as states_hook(t, state) with each new state, so a
                caller can keep (and retain gradients of) the hidden states.

        Returns:
            (outputs, states): task outputs and the list of per-step states, each
            (h_t,) or (h_t, c_t); (x_t,) complex for lru.
        """
        u = self.inputs(x)  # (B, T, I)
        xi = self.step_inputs(u)  # (B, T, G*H)
        B, T, _ = xi.shape
        with _maybe_cached(self):
            w_hh = self.recurrent_weight()
            state = self.initial_state(B, xi)
            states = []
            for t in range(T):
                state = self.cell_step(xi[:, t], state, w_hh)
                if states_hook is not None:
                    state = states_hook(t, state) or state
                states.append(state)
        if self.core is not None:
            hs = torch.stack([s[0] for s in states])  # (T, B, D)
            return self._core_head(hs, u.transpose(0, 1)), states
        hs = torch.stack([s[0] for s in states], dim=1)  # (B, T, H)
        return self.head(hs), states


def _maybe_cached(model: nn.Module):
    # With a parametrised W_hh, compute the orthogonal matrix once per unroll, not per step.
    if model.rnn is not None and parametrize.is_parametrized(model.rnn):
        return parametrize.cached()
    return contextlib.nullcontext()


def gate_blocks(w_hh: torch.Tensor, cell: str) -> dict[str, torch.Tensor]:
    """Split W_hh (G*H, H) into its named H x H gate blocks."""
    return dict(zip(GATE_NAMES[cell], w_hh.chunk(GATES[cell], dim=0), strict=True))


def _init_recurrent(model: SequenceModel, length: int | None) -> None:
    spec, rnn = model.spec, model.rnn
    if rnn is None:  # the diagonal cells initialise themselves (rnngrad.cells)
        return
    H = spec.hidden_size
    with torch.no_grad():
        if spec.init == "orthogonal":
            for block in rnn.weight_hh_l0.chunk(GATES[spec.cell], dim=0):
                nn.init.orthogonal_(block)
        elif spec.init == "identity":
            rnn.weight_hh_l0.copy_(torch.eye(H))
            rnn.bias_hh_l0.zero_()
            rnn.bias_ih_l0.zero_()
        elif spec.init == "chrono":
            if length is None or length < 3:
                raise ValueError(f"init 'chrono' needs the task length T >= 3, got {length!r}")
            # forget bias log(U(1, T_max)) and input bias its negative, all in bias_hh;
            # torch adds bias_ih and bias_hh, so bias_ih is zeroed.
            longest = model.task.max_lag(length)
            forget = torch.log(torch.empty(H).uniform_(1.0, float(longest)))
            rnn.bias_ih_l0.zero_()
            rnn.bias_hh_l0.zero_()
            rnn.bias_hh_l0[H : 2 * H] = forget
            rnn.bias_hh_l0[0:H] = -forget
        elif spec.init == "forget_bias":
            # torch adds bias_ih and bias_hh: the forget block is 1 in one and 0 in the other
            rnn.bias_ih_l0[H : 2 * H] = 0.0
            rnn.bias_hh_l0[H : 2 * H] = 1.0


def build_model(
    spec: VariantSpec, task: str, length: int | None = None, seed: int | None = None
) -> SequenceModel:
    """Build the model of a variant for a task.

    Args:
        spec: the variant.
        task: a key of rnngrad.tasks.TASKS.
        length: the task's dependency length T (needed by init 'chrono' and cell
            'indrnn', whose bound 2^(1/T) takes the input's length).
        seed: when given, the initial weights come from this seed alone, whatever the
            global random state.

    Raises:
        ValueError: unknown task, or a variant that cannot be built (names the key).

    Example:
        >>> m = build_model(VariantSpec(cell="gru", init="orthogonal"), task="adding")
    """
    if seed is None:
        return _build(spec, task, length)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _build(spec, task, length)


def _build(spec: VariantSpec, task: str, length: int | None) -> SequenceModel:
    model = SequenceModel(spec, task, length)
    _init_recurrent(model, length)
    if spec.constraint == "orthogonal":
        # torch starts from the Q factor of a QR decomposition of the init's W_hh (not the
        # nearest orthogonal matrix, which would be the polar factor).
        parametrizations.orthogonal(model.rnn, "weight_hh_l0")
    return model
