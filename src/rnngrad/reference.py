"""NumPy reference for the Elman RNN: forward pass and backpropagation through time.

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh,    h_t = f(a_t),    f = tanh or identity

in float64, written out step by step (Rumelhart, Hinton & Williams 1986; Werbos 1990),
so that the probes' dL/dh_t can be checked against arithmetic that shares no code
with torch. The loss is either a linear readout at the last step,

    L = sum_b (w_out . h_{T-1,b} + b_out - y_b)^2

(the per-example sum, as `tasks.long_range_loss` for adding), or any loss whose
gradient dL/dh_{T-1} is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ACTIVATIONS", "ElmanParams", "BPTTResult", "elman_forward", "elman_bptt"]

ACTIVATIONS = ("tanh", "identity")


@dataclass(frozen=True)
class ElmanParams:
    """Weights of an Elman RNN with an optional scalar readout at the last step.

    Attributes:
        w_ih: input weights (H, I).
        w_hh: recurrent weights (H, H).
        b_ih: input bias (H,).
        b_hh: recurrent bias (H,).
        w_out: readout weights (H,); None when the loss gradient is given instead.
        b_out: readout bias.
    """

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray
    w_out: np.ndarray | None = None
    b_out: float = 0.0


@dataclass(frozen=True)
class BPTTResult:
    """What `elman_bptt` returns.

    Attributes:
        loss: L.
        grads: dL/dparameter for each field of ElmanParams ("w_out", "b_out" only with
            a readout), same shapes as the parameters.
        grad_h: dL/dh_t for every t (B, T, H): the total derivative through all later steps.
        grad_h0: dL/dh_{-1}, the gradient of the initial state (B, H).
        hidden: the hidden states h_t (B, T, H).
    """

    loss: float
    grads: dict[str, np.ndarray | float]
    grad_h: np.ndarray
    grad_h0: np.ndarray
    hidden: np.ndarray


def _check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; options are {list(ACTIVATIONS)}")


def _forward(x, p: ElmanParams, h0, activation):
    _check_activation(activation)
    x = np.asarray(x, dtype=np.float64)
    B, T, _ = x.shape
    H = p.w_hh.shape[0]
    h = np.zeros((B, H)) if h0 is None else np.asarray(h0, dtype=np.float64)
    xi = x @ p.w_ih.T + p.b_ih  # (B, T, H)
    hs = np.empty((B, T, H))
    for t in range(T):
        a = xi[:, t] + h @ p.w_hh.T + p.b_hh  # (B, H)
        h = np.tanh(a) if activation == "tanh" else a
        hs[:, t] = h
    return x, hs


def elman_forward(
    x: np.ndarray, params: ElmanParams, h0: np.ndarray | None = None, activation: str = "tanh"
) -> np.ndarray:
    """Hidden states of the Elman RNN.

    Args:
        x: inputs (B, T, I).
        params: the weights.
        h0: initial state (B, H); zeros when None.
        activation: "tanh" or "identity".

    Returns:
        h_t for every t, (B, T, H) float64.
    """
    return _forward(x, params, h0, activation)[1]


def elman_bptt(
    x: np.ndarray,
    params: ElmanParams,
    *,
    y: np.ndarray | None = None,
    grad_h_last: np.ndarray | None = None,
    h0: np.ndarray | None = None,
    activation: str = "tanh",
) -> BPTTResult:
    """Forward pass and backpropagation through time.

    Give exactly one of `y` (the readout loss sum_b (w_out . h_{T-1,b} + b_out - y_b)^2)
    or `grad_h_last` (dL/dh_{T-1}; L is then the linear functional sum_b <g_b, h_{T-1,b}>).

    Args:
        x: inputs (B, T, I).
        params: the weights; `w_out` is needed with `y`.
        y: readout targets (B,).
        grad_h_last: dL/dh_{T-1} (B, H).
        h0: initial state (B, H); zeros when None.
        activation: "tanh" or "identity".

    Returns:
        a BPTTResult with the loss, parameter gradients and every dL/dh_t.

    Raises:
        ValueError: neither or both of `y` and `grad_h_last`, `y` without `w_out`, or an
            unknown activation.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> p = ElmanParams(rng.normal(size=(3, 2)), rng.normal(size=(3, 3)) / 3,
        ...                 np.zeros(3), np.zeros(3), w_out=np.ones(3))
        >>> r = elman_bptt(rng.normal(size=(4, 5, 2)), p, y=np.ones(4))
        >>> r.grad_h.shape
        (4, 5, 3)
    """
    if (y is None) == (grad_h_last is None):
        raise ValueError("give exactly one of y (readout loss) and grad_h_last (dL/dh_{T-1})")
    if y is not None and params.w_out is None:
        raise ValueError("the readout loss needs params.w_out")
    x, hs = _forward(x, params, h0, activation)
    B, T, H = hs.shape
    h_init = np.zeros((B, H)) if h0 is None else np.asarray(h0, dtype=np.float64)
    h_last = hs[:, -1]
    grads: dict[str, np.ndarray | float] = {}
    if y is not None:
        resid = h_last @ params.w_out + params.b_out - np.asarray(y, dtype=np.float64)  # (B,)
        loss = float(np.sum(resid**2))
        g = 2.0 * resid[:, None] * params.w_out  # dL/dh_{T-1} (B, H)
        grads["w_out"] = 2.0 * resid @ h_last
        grads["b_out"] = float(2.0 * resid.sum())
    else:
        g = np.asarray(grad_h_last, dtype=np.float64)
        loss = float(np.sum(g * h_last))
    gw_ih = np.zeros_like(params.w_ih, dtype=np.float64)
    gw_hh = np.zeros_like(params.w_hh, dtype=np.float64)
    gb = np.zeros(H)
    grad_h = np.empty((B, T, H))
    for t in range(T - 1, -1, -1):
        grad_h[:, t] = g
        # dL/da_t = dL/dh_t * f'(a_t); tanh' = 1 - h_t^2
        da = g * (1.0 - hs[:, t] ** 2) if activation == "tanh" else g  # (B, H)
        h_prev = hs[:, t - 1] if t > 0 else h_init
        gw_hh += da.T @ h_prev
        gw_ih += da.T @ x[:, t]
        gb += da.sum(axis=0)
        g = da @ params.w_hh  # dL/dh_{t-1}
    grads.update(w_ih=gw_ih, w_hh=gw_hh, b_ih=gb, b_hh=gb.copy())
    return BPTTResult(loss=loss, grads=grads, grad_h=grad_h, grad_h0=g, hidden=hs)
