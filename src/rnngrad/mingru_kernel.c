/* minGRU's recurrence and its backward, one pass over memory each (rnngrad.mingru_scan).
 *
 * Layout, time-major and contiguous: p and s are (T, B, 2H) with the z half first
 * ([pz, ph] and [z, cand]), h and the upstream gradient gh are (T, B, H), carry and
 * zero are (B, H). s holds sigmoid(p) on entry (torch's vectorised sigmoid).
 *
 * forward:  cand_t = ph_t + 1/2 where ph_t >= 0, else sigmoid(ph_t) (minGRU's g),
 *           written over the sigmoid half of s; h_t = h_{t-1} + z_t (cand_t - h_{t-1}),
 *           h_{-1} = 0.
 * backward: G_t = gh_t + (1 - z_{t+1}) G_{t+1}, kept in carry as (1 - z_t) G_t;
 *           dL/dpz_t = G_t (cand_t - h_{t-1}) z_t (1 - z_t),
 *           dL/dph_t = G_t z_t g'(ph_t), g' = 1 where ph_t >= 0, else cand (1 - cand),
 *           written over s ([z, cand] in, [dL/dpz, dL/dph] out): each element is
 *           read before it is written, so the gradient needs no new B x T x 2H buffer.
 *
 * Both inner loops are branch-free over j, so the compiler vectorises them
 * (-fno-trapping-math lets it turn the comparisons into selects); h_{-1} is the zero
 * row, not a test on t inside the loop. Plain C99, no torch headers: it compiles in a
 * fraction of a second (rnngrad.native). */

#define MINGRU_KERNELS(real, sfx)                                                         \
    void mingru_forward_##sfx(long T, long B, long H, const real *restrict p,              \
                              real *restrict s, real *restrict h,                          \
                              const real *restrict zero)                                   \
    {                                                                                      \
        for (long t = 0; t < T; t++)                                                       \
            for (long b = 0; b < B; b++) {                                                 \
                long r = t * B + b;                                                        \
                const real *restrict ph = p + r * 2 * H + H;                               \
                const real *restrict z = s + r * 2 * H;                                    \
                real *restrict cand = s + r * 2 * H + H;                                   \
                real *restrict hr = h + r * H;                                             \
                const real *restrict prev = t ? h + (r - B) * H : zero + b * H;            \
                for (long j = 0; j < H; j++) {                                             \
                    real v = ph[j], sig = cand[j], hp = prev[j];                           \
                    real c = v >= 0 ? v + (real)0.5 : sig;                                 \
                    cand[j] = c;                                                           \
                    hr[j] = hp + z[j] * (c - hp);                                          \
                }                                                                          \
            }                                                                              \
    }                                                                                      \
                                                                                           \
    void mingru_backward_##sfx(long T, long B, long H, const real *restrict p,             \
                               const real *restrict h, const real *restrict gh,            \
                               real *restrict carry, real *restrict s,                     \
                               const real *restrict zero)                                  \
    {                                                                                      \
        for (long t = T - 1; t >= 0; t--)                                                  \
            for (long b = 0; b < B; b++) {                                                 \
                long r = t * B + b;                                                        \
                const real *restrict ph = p + r * 2 * H + H;                               \
                const real *restrict g = gh + r * H;                                       \
                const real *restrict prev = t ? h + (r - B) * H : zero + b * H;            \
                real *restrict cr = carry + b * H;                                         \
                real *restrict zs = s + r * 2 * H; /* z in, dL/dpz out */                  \
                real *restrict cs = zs + H;        /* cand in, dL/dph out */               \
                for (long j = 0; j < H; j++) {                                             \
                    real G = g[j] + cr[j], z = zs[j], a = 1 - z, c = cs[j];                \
                    real d = ph[j] >= 0 ? (real)1 : c * (1 - c);                           \
                    cr[j] = a * G;                                                         \
                    zs[j] = G * (c - prev[j]) * z * a;                                     \
                    cs[j] = G * z * d;                                                     \
                }                                                                          \
            }                                                                              \
    }

MINGRU_KERNELS(float, f32)
MINGRU_KERNELS(double, f64)
