"""HiPPO-LegS and its normal-plus-low-rank form, shared by S4D-LegS (models/s4d.py) and S5 (models/s5.py).

NumPy float64, run once at initialisation (never inside a jitted function).

HiPPO-LegS (Gu et al. 2020, "HiPPO: Recurrent Memory with Optimal Polynomial Projections", Eq. for LegS;
sign convention of Gu et al. 2022, "Efficiently Modeling Long Sequences with Structured State Spaces", Eq. (2)):

    A_nk = -sqrt(2n+1) sqrt(2k+1)  if n > k,   -(n+1)  if n = k,   0  if n < k;     B_n = sqrt(2n+1).

Normal plus low rank (S4, Sec. 3.2 / Thm. 1): with P_n = sqrt(n + 1/2), S = A + P P^T is -1/2 I plus a
skew-symmetric matrix, hence normal: S = V diag(Lambda) V^*, V unitary, Re(Lambda) = -1/2. S4D-LegS
(Gu et al. 2022b, Sec. 4) and S5 (Smith et al. 2023, Sec. 4.1) both initialise with this Lambda.
"""
import numpy as np


def legs(N):
    """HiPPO-LegS (A (N, N), B (N,)), float64."""
    q = np.sqrt(2.0 * np.arange(N) + 1.0)
    A = -np.tril(np.outer(q, q), -1) - np.diag(np.arange(N) + 1.0)
    return A, q.copy()


def legs_normal(N):
    """The normal part of HiPPO-LegS and its eigendecomposition.

    Returns (S (N, N) float64, Lambda (N,) complex128, V (N, N) complex128) with S = A + P P^T =
    V diag(Lambda) V^*. Lambda's real part is set to exactly -1/2 (the mean of diag(S), which is constant);
    the imaginary parts come from eigh of the Hermitian -i S, in ascending order, so eigenvalues come in
    conjugate pairs (i w, -i w) and the last N/2 have Im > 0 (N even).
    """
    A, _ = legs(N)
    P = np.sqrt(np.arange(N) + 0.5)
    S = A + np.outer(P, P)
    omega, V = np.linalg.eigh(-1j * S)  # -iS is Hermitian since S + 1/2 I is real skew-symmetric
    Lambda = np.mean(np.diag(S)) + 1j * omega
    return S, Lambda, V


def legs_normal_half(N):
    """One eigenvalue of each conjugate pair (the N/2 with Im > 0), for conjugate-symmetric models.

    Returns (Lambda (N/2,) complex128, V (N, N/2) complex128, VinvB (N/2,) complex128) where VinvB = V^* B is
    the LegS input vector in the eigenbasis (S4's B for S4D-LegS). ValueError if N is odd or < 2.
    """
    if N < 2 or N % 2:
        raise ValueError(f"the HiPPO-LegS state size must be even and >= 2 (conjugate pairs); got N={N}")
    _, Lambda, V = legs_normal(N)
    keep = slice(N // 2, N)
    _, B = legs(N)
    return Lambda[keep], V[:, keep], V[:, keep].conj().T @ B
