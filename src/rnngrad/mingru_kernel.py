"""minGRU's recurrence and its backward, one pass over memory each, compiled by numba.

Layout, time-major and contiguous: p and s are (T, B, 2H) with the z half first
([pz, ph] and [z, cand]), h and the upstream gradient gh are (T, B, H), carry and
zero are (B, H); `one` is (1,), 1 in the arrays' dtype, so that no constant promotes a
float32 kernel to float64. s holds sigmoid(p) on entry (torch's vectorised sigmoid).

forward:  cand_t = ph_t + 1/2 where ph_t >= 0, else sigmoid(ph_t) (minGRU's g),
          written over the sigmoid half of s; h_t = h_{t-1} + z_t (cand_t - h_{t-1}),
          h_{-1} = 0.
backward: G_t = gh_t + (1 - z_{t+1}) G_{t+1}, kept in carry as (1 - z_t) G_t;
          dL/dpz_t = G_t (cand_t - h_{t-1}) z_t (1 - z_t),
          dL/dph_t = G_t z_t g'(ph_t), g' = 1 where ph_t >= 0, else cand (1 - cand),
          written over s ([z, cand] in, [dL/dpz, dL/dph] out): each element is read
          before it is written, so the gradient needs no new B x T x 2H buffer.

Both inner loops are branch-free over j, every operand loaded before the select, so
LLVM vectorises them (a load inside the select's branch kept the forward scalar, 4x
slower); h_{-1} is the zero row, not a test on t inside the loop. Each kernel checks
the shapes of its arrays against p's before it reads one: bounds checks are off, so
these checks are what keeps a wrong call from reading past an array (rnngrad.native).
numba compiles for this CPU and caches the build keyed by the CPU's name and features.
"""

from __future__ import annotations

import numba

__all__ = ["backward", "forward", "sizes"]

_JIT = {"cache": True, "nogil": True, "error_model": "numpy", "boundscheck": False}


@numba.njit(**_JIT)
def sizes(p, s, h, zero, one):
    """T, B, H of p (T, B, 2H), after checking the other arrays' shapes against it."""
    T, B, H2 = p.shape
    H = H2 // 2
    if H2 != 2 * H or s.shape != p.shape or h.shape != (T, B, H) or zero.shape != (B, H):
        raise ValueError("mingru kernel: arrays of inconsistent shapes")
    if one.shape != (1,):
        raise ValueError("mingru kernel: `one` must be a (1,) array")
    return T, B, H


@numba.njit(**_JIT)
def forward(p, s, h, zero, one):  # p, s (T, B, 2H); h (T, B, H); zero (B, H)
    T, B, H = sizes(p, s, h, zero, one)
    half = one[0] / 2
    for t in range(T):
        for b in range(B):
            ph, z, cand = p[t, b, H:], s[t, b, :H], s[t, b, H:]
            hr = h[t, b]
            prev = h[t - 1, b] if t > 0 else zero[b]
            for j in range(H):
                v, sig, hp = ph[j], cand[j], prev[j]
                c = v + half if v >= 0 else sig
                cand[j] = c
                hr[j] = hp + z[j] * (c - hp)


@numba.njit(**_JIT)
def backward(p, h, gh, carry, s, zero, one):  # gh (T, B, H); carry (B, H), zeros on entry
    T, B, H = sizes(p, s, h, zero, one)
    if gh.shape != h.shape or carry.shape != zero.shape:
        raise ValueError("mingru kernel: arrays of inconsistent shapes")
    o = one[0]
    for t in range(T - 1, -1, -1):
        for b in range(B):
            ph, g, cr = p[t, b, H:], gh[t, b], carry[b]
            prev = h[t - 1, b] if t > 0 else zero[b]
            zs, cs = s[t, b, :H], s[t, b, H:]  # [z, cand] in, [dL/dpz, dL/dph] out
            for j in range(H):
                G, z, c, v = g[j] + cr[j], zs[j], cs[j], ph[j]
                a = o - z
                d = o if v >= 0 else c * (o - c)
                cr[j] = a * G
                zs[j] = G * (c - prev[j]) * z * a
                cs[j] = G * z * d
