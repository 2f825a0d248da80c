#!/usr/bin/env python3
"""winograd_matrices.py - writes src/winograd_tables.h, the transforms of
Winograd's minimal filtering F(m, r) that src/winograd.c runs, derived here by
Toom-Cook from a set of interpolation points, in exact fractions.

Run once when a table needs to change: /usr/bin/python3 tools/winograd_matrices.py
(numpy from Debian's python3-numpy, only for the accuracy check).

F(m, r) computes m outputs of a correlation with an r-tap kernel from
n = m + r - 1 inputs: y = AT [(G g) . (BT d)]. With the n - 1 finite points
p_j and the point at infinity, the polynomial product s = h * g (deg h = m-1,
deg g = r-1) is recovered from its values at the points and its leading
coefficient; the correlation is the transpose of that product:
  AT[i][j] = p_j^i (the last column picks h's top coefficient),
  G[j][k]  = p_j^k / f_j, f_j = prod_{l != j} (p_j - p_l) (last row picks g's top),
  BT[j]    = coefficients of prod_{l != j} (x - p_l) (last row: of prod_l (x - p_l)).
In two dimensions Y = AT [(G g GT) . (BT d B)] A.
"""
import sys
from fractions import Fraction as Fr

# (m, r, points). F(2,3) keeps the classic 0, 1, -1. For F(4,3), 0, +-1,
# 1/2, -2 measured the most accurate in float32 of the sets tried (with
# float32_error, 4000 tiles): 7.5e-7, against 1.3e-6 for 0, +-1, +-2 and
# 1.6e-6 for 0, +-1, +-1/2. F(4,5) adds 2 and -1/2: 9.5e-7 (1.5e-5 with
# +-1/4, +-4 instead). (F(2,5) needs more multiplications than F(4,5) for
# every output wider than 2, and is left out.)
#
# The weight gradient is the correlation of x with dy, r x r outputs from
# tiles of dy: F(3,4) and F(5,4), on the same points as the forward
# variants with the same n (3.4e-7 and 1.5e-6).
VARIANTS = [
    (2, 3, [0, 1, -1]),
    (4, 3, [0, 1, -1, Fr(1, 2), -2]),
    (4, 5, [0, 1, -1, Fr(1, 2), -2, 2, Fr(-1, 2)]),
    (3, 4, [0, 1, -1, Fr(1, 2), -2]),
    (5, 4, [0, 1, -1, Fr(1, 2), -2, 2, Fr(-1, 2)]),
]


def poly_mul(a, b):
    out = [Fr(0)] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += x * y
    return out


def matrices(m, r, pts):
    n = m + r - 1
    pts = [Fr(p) for p in pts]
    assert len(pts) == n - 1
    AT = [[pts[j] ** i for j in range(n - 1)] + [Fr(1 if i == m - 1 else 0)] for i in range(m)]
    G = []
    BT = []
    for j, p in enumerate(pts):
        f = Fr(1)
        poly = [Fr(1)]
        for l, q in enumerate(pts):
            if l != j:
                f *= p - q
                poly = poly_mul(poly, [-q, Fr(1)])
        G.append([p ** k / f for k in range(r)])
        BT.append(poly + [Fr(0)] * (n - len(poly)))
    G.append([Fr(1 if k == r - 1 else 0) for k in range(r)])
    poly = [Fr(1)]
    for q in pts:
        poly = poly_mul(poly, [-q, Fr(1)])
    BT.append(poly)
    return AT, G, BT


def check_exact(m, r, AT, G, BT):
    """The 1-D algorithm equals the correlation for symbolic unit inputs."""
    n = m + r - 1
    for a in range(n):
        for k in range(r):
            d = [Fr(1 if i == a else 0) for i in range(n)]
            g = [Fr(1 if i == k else 0) for i in range(r)]
            u = [sum(G[j][q] * g[q] for q in range(r)) for j in range(n)]
            v = [sum(BT[j][q] * d[q] for q in range(n)) for j in range(n)]
            y = [sum(AT[i][j] * u[j] * v[j] for j in range(n)) for i in range(m)]
            want = [sum(d[i + q] * g[q] for q in range(r)) for i in range(m)]
            assert y == want, (m, r, a, k)


def float32_error(m, r, AT, G, BT, trials=2000):
    """Max error of the 2-D algorithm in float32 over C = 256 channels,
    relative to the sum of the terms' magnitudes (the test's yardstick)."""
    import numpy as np
    n = m + r - 1
    rng = np.random.default_rng(1)
    at, g_, bt = (np.array([[float(x) for x in row] for row in M], dtype=np.float32)
                  for M in (AT, G, BT))
    C = 256
    d = rng.standard_normal((trials, C, n, n)).astype(np.float32)
    w = rng.standard_normal((C, r, r)).astype(np.float32)
    U = np.einsum('jk,ckl,il->cji', g_, w, g_).astype(np.float32)
    V = np.einsum('jk,tckl,il->tcji', bt, d, bt).astype(np.float32)
    M = np.einsum('cji,tcji->tji', U, V).astype(np.float32)
    Y = np.einsum('ij,tjk,lk->til', at, M, at)
    d64, w64 = d.astype(np.float64), w.astype(np.float64)
    want = np.zeros((trials, m, m))
    mag = np.zeros((trials, m, m))
    for i in range(m):
        for j in range(m):
            terms = d64[:, :, i:i + r, j:j + r] * w64[None]
            want[:, i, j] = terms.sum(axis=(1, 2, 3))
            mag[:, i, j] = np.abs(terms).sum(axis=(1, 2, 3))
    return float(np.max(np.abs(Y - want) / mag))


def c_table(name, M):
    rows = ",\n    ".join("{" + ", ".join(c_float(x) for x in row) + "}" for row in M)
    return f"{{\n    {rows}}}"


def c_float(x):
    return repr(float(x)) + "f" if x.denominator != 1 else f"{x.numerator}.0f"


def main():
    out = ["/* winograd_tables.h - written by tools/winograd_matrices.py; do not edit.",
           " * The transforms of Winograd's F(m, r), derived by Toom-Cook from the",
           " * points named with each; Y = AT [(G g GT) . (BT d B)] A. */",
           "#ifndef CNNKIT_WINOGRAD_TABLES_H",
           "#define CNNKIT_WINOGRAD_TABLES_H",
           ""]
    for m, r, pts in VARIANTS:
        AT, G, BT = matrices(m, r, pts)
        check_exact(m, r, AT, G, BT)
        err = float32_error(m, r, AT, G, BT) if "--no-check" not in sys.argv else float("nan")
        n = m + r - 1
        print(f"F({m},{r}) points {[str(p) for p in pts]}: float32 error {err:.2e} "
              f"of the terms' magnitude sum", file=sys.stderr)
        tag = f"F{m}_{r}"
        out.append(f"/* F({m}x{m}, {r}x{r}): points {', '.join(str(p) for p in pts)} and infinity;"
                   f" float32 error {err:.1e} of the terms' magnitude sum at C = 256. */")
        out.append(f"static const float wino_{tag}_AT[{m}][{n}] = {c_table('AT', AT)};")
        out.append(f"static const float wino_{tag}_G[{n}][{r}] = {c_table('G', G)};")
        if r == 4:
            # BT depends on the points only: the forward variant's with the same n.
            assert BT == matrices(4, m, pts)[2]
            out[-3] = out[-3][:-3] + f" For the weight gradient; BT is F(4x4, {m}x{m})'s. */"
            out.append("")
            continue
        out.append(f"static const float wino_{tag}_BT[{n}][{n}] = {c_table('BT', BT)};")
        out.append("")
    out.append("#endif")
    with open("src/winograd_tables.h", "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
