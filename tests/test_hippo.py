"""models.hippo: HiPPO-LegS and its normal-plus-low-rank form (shared by S4D-LegS and S5)."""
import numpy as np
import pytest

from models import hippo

SIZES = [2, 4, 8, 16, 64]


def test_legs_matches_the_definition_entrywise():
    N = 6
    A, B = hippo.legs(N)
    for n in range(N):
        assert B[n] == pytest.approx(np.sqrt(2 * n + 1))
        for k in range(N):
            want = -np.sqrt(2 * n + 1) * np.sqrt(2 * k + 1) if n > k else (-(n + 1) if n == k else 0.0)
            assert A[n, k] == pytest.approx(want), (n, k)


@pytest.mark.parametrize("N", SIZES)
def test_normal_part_is_skew_symmetric_up_to_a_diagonal_shift(N):
    S, Lambda, V = hippo.legs_normal(N)
    A, _ = hippo.legs(N)
    P = np.sqrt(np.arange(N) + 0.5)
    np.testing.assert_allclose(S, A + np.outer(P, P), atol=1e-12)
    skew = S + 0.5 * np.eye(N)
    np.testing.assert_allclose(skew, -skew.T, atol=1e-12)
    assert np.abs(skew).max() > 0.5  # not trivially zero
    # ... so S is normal and V diagonalises it unitarily, with eigenvalues -1/2 + i w.
    np.testing.assert_allclose(V.conj().T @ V, np.eye(N), atol=1e-10)
    np.testing.assert_allclose(V @ np.diag(Lambda) @ V.conj().T, S, atol=1e-9 * N)
    np.testing.assert_allclose(Lambda.real, -0.5, atol=1e-12)
    np.testing.assert_allclose(np.sort(Lambda.imag), np.sort(np.linalg.eigvals(S).imag), atol=1e-8 * N)


@pytest.mark.parametrize("N", SIZES)
def test_half_keeps_one_of_each_conjugate_pair(N):
    Lambda, V, VinvB = hippo.legs_normal_half(N)
    assert Lambda.shape == (N // 2,) and V.shape == (N, N // 2) and VinvB.shape == (N // 2,)
    assert (Lambda.imag > 0).all()
    # The kept half plus its conjugates is the whole spectrum, and the real system is recovered:
    # V diag(Lambda) V^* + conj(.) = S and 2 Re(V V^* B) = B (B real).
    S, full, _ = hippo.legs_normal(N)
    by_imag = lambda z: z[np.argsort(z.imag)]  # (np.sort_complex orders by the real parts' rounding first)
    np.testing.assert_allclose(by_imag(np.concatenate([Lambda, Lambda.conj()])), by_imag(full), atol=1e-9 * N)
    np.testing.assert_allclose(2 * (V @ np.diag(Lambda) @ V.conj().T).real, S, atol=1e-9 * N)
    _, B = hippo.legs(N)
    np.testing.assert_allclose(2 * (V @ VinvB).real, B, atol=1e-9 * N)


@pytest.mark.parametrize("N", [0, 3])
def test_half_rejects_odd_sizes(N):
    with pytest.raises(ValueError, match="even"):
        hippo.legs_normal_half(N)
