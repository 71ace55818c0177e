"""Recurrent cores whose state Jacobian is diagonal: lru, mingru, indrnn.

- lru, the Linear Recurrent Unit (Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De
  2023, "Resurrecting Recurrent Neural Networks for Long Sequences"):
  x_t = diag(lambda) x_{t-1} + gamma * (B e_t), y_t = Re(C x_t) + D * e_t, with
  N = ceil(H / 2) complex modes, so the state holds H real numbers like the other
  cells' h (minimal-LRU's defaults pair d_model 256 with d_hidden 128 the same way);
  lambda = exp(-exp(nu_log) + i exp(theta_log)), gamma = exp(gamma_log) initialised to
  sqrt(1 - |lambda|^2) and trained (the paper's normalisation). Ring initialisation:
  |lambda|^2 uniform on [r_min^2, r_max^2], the phase uniform on [0, max_phase]; B and C
  Gaussian, scaled as in the paper's Appendix A code (1/sqrt(2H), 1/sqrt(N)). Defaults
  (VariantSpec): r_min 0.9, r_max 0.999, max_phase pi/10, the paper's long-range
  settings, with |lambda| close to 1 and a small phase: the published LRA configurations
  use rmin 0.9, rmax 0.999 (Pathfinder) and r_min 0.999, r_max 0.9999, max_phase 0.31
  ~ pi/10 (PathX). The paper's pseudo-code defaults (r_min 0, r_max 1, max_phase 6.28)
  put |lambda| = 1 in range, which r_max < 1 excludes here.
- mingru (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We
  Needed?"): z_t = sigmoid(W_z e_t), h~_t = g(W_h e_t), h_t = (1 - z_t) h_{t-1} +
  z_t h~_t, with the paper's log-space activation g(v) = v + 0.5 for v >= 0, sigmoid(v)
  otherwise (h~ > 0). No h_{t-1} in the gates, so the recurrence is linear in h. The
  paper scans it in log space; here the linear-space scans of rnngrad.scan, which equal
  the loop to 1e-5 in float32 where the log-space form does not (scan.scan_log): on a
  CPU with the gates fused into the scan's forward and backward, compiled by numba
  where it works (rnngrad.mingru_scan, rnngrad.native), on CUDA the associative scan.
- indrnn (Li, Li, Cook, Zhu & Gao 2018, "Independently Recurrent Neural Network"):
  h_t = relu(W e_t + b + w * h_{t-1}) over the block's features e_t (below), each unit
  with one recurrent weight w_j, kept in |w_j| <= 2^(1/T) (T the input's length) by a
  projection after every optimiser step (`after_step`), the paper's constraint for
  ReLU units: no unit can grow more than 2x over the sequence. w starts uniform on
  [0, 2^(1/T)] (the paper's adding set-up, as in batzner/indrnn, which takes its
  settings from the paper).

lru and mingru sit in the LRU paper's block: e_t = GELU(W_e u_t + b_e) before the
recurrence (a linear recurrence over linear features cannot form the adding task's
value x marker products), then GLU(GELU(y_t)) plus the skip e_t after it; the model's
readout reads that. minGRU gets the same projections so the two compare as cores.
IndRNN reads the same e_t, and the readout reads its h_t. One ReLU layer over the raw
input cannot solve adding: a unit's pre-activation is w_v v_t + w_m m_t + b + w h_{t-1},
and to hold h through the unmarked steps (m_t = 0) whatever the value v_t, w_v and b
must be 0, so nothing of v_t can enter at the marked ones; one such layer trained on
adding at T = 8 stalls at an MSE of 0.043 (baseline 0.167) in 2,000 steps, where it
solves T = 8 and 32 over e_t. The paper stacks two IndRNN layers for adding, the first
forming the gated values; e_t is that first layer without its recurrence, and keeps
the probed Jacobian diagonal.

The probed state is x_t (lru, complex), h_t (mingru, indrnn). Their one-step Jacobians
are diagonal: diag(lambda), diag(1 - z_t), diag(relu'(a_t) w); JACOBIANS gives them as
(n, D) diagonals, fn(model, xi, prev, w). Every parameter is a real tensor (lambda, B
and C are formed in forward), so model.double() keeps all of them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rnngrad.mingru_scan import g_activation, mingru_scan, mingru_scan_native, native_available
from rnngrad.scan import auto_method, linear_scan

__all__ = ["CORES", "JACOBIANS", "LRU", "MinGRU", "IndRNN", "g_activation", "scan_method"]


class _Encoded(nn.Module):
    """A core that reads the block's nonlinear features e_t = GELU(W_e u_t + b_e)."""

    def __init__(self, in_size: int, H: int):
        super().__init__()
        self.encoder = nn.Linear(in_size, H)

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.encoder(u))  # (..., H)


class _Block(_Encoded):
    """The LRU paper's block around a core: GELU encoder before, GELU + GLU + skip after."""

    def __init__(self, in_size: int, H: int):
        super().__init__(in_size, H)
        self.glu = nn.Linear(H, 2 * H)

    def mix(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return F.glu(self.glu(F.gelu(y)), dim=-1) + e  # (..., H)


class LRU(_Block):
    """Linear Recurrent Unit in its block. State: x (..., N) complex, N = ceil(H / 2)."""

    def __init__(self, in_size: int, H: int, r_min: float, r_max: float, max_phase: float):
        super().__init__(in_size, H)
        self.state_size = N = -(-H // 2)
        u1, u2 = torch.rand(N), torch.rand(N)
        # |lambda|^2 uniform on [r_min^2, r_max^2]: nu = -log|lambda| = -log(r^2) / 2
        nu = -0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2)
        self.nu_log = nn.Parameter(torch.log(nu))
        self.theta_log = nn.Parameter(torch.log(max_phase * u2.clamp_min(1e-12)))
        modulus = torch.exp(-nu)
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1 - modulus**2)))
        self.B_re = nn.Parameter(torch.randn(N, H) / math.sqrt(2 * H))
        self.B_im = nn.Parameter(torch.randn(N, H) / math.sqrt(2 * H))
        self.C_re = nn.Parameter(torch.randn(H, N) / math.sqrt(N))
        self.C_im = nn.Parameter(torch.randn(H, N) / math.sqrt(N))
        self.D = nn.Parameter(torch.randn(H))

    def coefficient(self) -> torch.Tensor:
        """lambda (N,), complex."""
        return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))

    def step_inputs(self, u: torch.Tensor) -> torch.Tensor:
        """gamma * (B e_t) for every step (..., N), complex: one real GEMM."""
        e = self.encode(u)  # (..., H)
        # rows interleaved re_0, im_0, re_1, ...: the GEMM's output is a complex tensor's
        # memory, viewed as one without a copy
        w = torch.stack([self.B_re, self.B_im], dim=1) * torch.exp(self.gamma_log)[:, None, None]
        out = e @ w.reshape(-1, e.shape[-1]).T  # (..., 2N)
        return torch.view_as_complex(out.unflatten(-1, (-1, 2)))  # (..., N)

    def cell_step(self, xi, state, w):
        return (w * state[0] + xi,)

    def scan(self, xi: torch.Tensor, w: torch.Tensor, method: str = "auto") -> torch.Tensor:
        return linear_scan(w, xi, method)  # (T, B, N)

    def features(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        e = self.encode(u)
        y = x.real @ self.C_re.T - x.imag @ self.C_im.T + self.D * e  # Re(C x) + D e
        return self.mix(y, e)

    def blocks(self) -> dict[str, torch.Tensor]:
        return {"lambda": torch.diag(self.coefficient())}


class MinGRU(_Block):
    """minGRU in the LRU's block. State: h (..., H)."""

    def __init__(self, in_size: int, H: int):
        super().__init__(in_size, H)
        self.state_size = H
        self.gates = nn.Linear(H, 2 * H)  # [W_z; W_h] e_t + b

    def coefficient(self) -> torch.Tensor:
        """No recurrent weight: an empty tensor (1 - z_t comes from the input)."""
        return self.gates.weight.new_zeros(0)

    def step_inputs(self, u: torch.Tensor) -> torch.Tensor:
        """[W_z e_t + b_z, W_h e_t + b_h] for every step (..., 2H)."""
        return self.gates(self.encode(u))

    def _split(self, xi):
        pz, ph = xi.chunk(2, dim=-1)
        z = torch.sigmoid(pz)
        return 1 - z, z * g_activation(ph)

    def cell_step(self, xi, state, w):
        a, b = self._split(xi)
        return (a * state[0] + b,)

    def scan(self, xi: torch.Tensor, w: torch.Tensor, method: str = "auto") -> torch.Tensor:
        if method == "auto":
            method = scan_method("mingru", xi.device.type, xi.dtype)
        if method == "native":  # g, recurrence and backward compiled (rnngrad.mingru_scan)
            return mingru_scan_native(xi)  # (T, B, H)
        if method == "fused":  # gates and recurrence in one torch Function
            return mingru_scan(xi)  # (T, B, H)
        return linear_scan(*self._split(xi), method)  # (T, B, H)

    def features(self, h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.mix(h, self.encode(u))

    def blocks(self) -> dict[str, torch.Tensor]:
        return {}


class IndRNN(_Encoded):
    """IndRNN, one ReLU layer over the block's encoder. State: h (..., H)."""

    def __init__(self, in_size: int, H: int, seq_len: int):
        super().__init__(in_size, H)
        self.state_size = H
        self.bound = 2.0 ** (1.0 / seq_len)
        self.input = nn.Linear(H, H)
        self.weight = nn.Parameter(torch.rand(H) * self.bound)  # w, the recurrent weights

    def coefficient(self) -> torch.Tensor:
        return self.weight  # (H,)

    def step_inputs(self, u: torch.Tensor) -> torch.Tensor:
        return self.input(self.encode(u))  # W e_t + b (..., H)

    def cell_step(self, xi, state, w):
        return (torch.relu(torch.addcmul(xi, w, state[0])),)

    def scan(self, xi: torch.Tensor, w: torch.Tensor, method: str = "auto") -> torch.Tensor:
        # nonlinear: a sequential loop over time-major slices (see benchmarks/bench_scan.py)
        h = [torch.relu(xi[0])]
        for x_t in xi[1:]:
            h.append(torch.relu(torch.addcmul(x_t, w, h[-1])))
        return torch.stack(h)  # (T, B, H)

    def features(self, h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return h

    def blocks(self) -> dict[str, torch.Tensor]:
        return {"u": torch.diag(self.weight)}

    @torch.no_grad()
    def after_step(self) -> None:
        self.weight.clamp_(-self.bound, self.bound)


CORES = {"lru": LRU, "mingru": MinGRU, "indrnn": IndRNN}


def scan_method(cell: str, device_type: str, dtype: torch.dtype = torch.float32) -> str:
    """The scan a cell trains with on a device ("auto").

    minGRU on a CPU: its compiled kernel where this machine has it (rnngrad.native says
    why not), else the fused torch Function (rnngrad.mingru_scan), which is also what it
    takes on any other device but CUDA (mps, ...): the kernel reads CPU memory only.
    """
    if cell == "mingru" and device_type == "cpu":
        return "native" if native_available(dtype) else "fused"
    if cell == "mingru" and device_type != "cuda":
        return "fused"
    return auto_method(device_type) if cell in ("lru", "mingru") else "loop"


# ---------------------------------------------------------------- Jacobians, (n, D)


def _lru_jacobian(model, xi, prev, w):
    # x' = lambda x + xi: dx'/dx = diag(lambda), the same at every step
    return w.expand(xi.shape[0], -1)  # (n, N) complex


def _mingru_jacobian(model, xi, prev, w):
    # h' = (1 - z) h + z h~, z and h~ from the input alone: dh'/dh = diag(1 - z)
    return 1 - torch.sigmoid(xi.chunk(2, dim=-1)[0])  # (n, H)


def _indrnn_jacobian(model, xi, prev, w):
    # h' = relu(a), a = xi + w h: dh'/dh = diag(relu'(a) w), relu'(0) = 0 as in autograd
    a = torch.addcmul(xi, w, prev[0])
    return (a > 0).to(a.dtype) * w  # (n, H)


JACOBIANS = {"lru": _lru_jacobian, "mingru": _mingru_jacobian, "indrnn": _indrnn_jacobian}
