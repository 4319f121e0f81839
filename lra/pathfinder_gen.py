"""Pathfinder generator (Linsley et al. 2018, "Learning long-range spatial dependencies with horizontal gated
recurrent units"), with the parameters LRA used (experiments/published/lra_data.md), written from that description.

An image holds two target "snakes" (chains of ``contour_length`` short line segments, "paddles", separated by a
gap of ``paddle_margin``; successive paddles turn by at most ``max_turn``), distractor snakes of
``distractor_length`` paddles, single-paddle distractors, and two circular markers. The first marker sits on one
end of snake A; the second on the other end of A (label 1, "connected") or on an end of snake B (label 0).
Everything is drawn at ``antialias`` times the resolution and box-downsampled.

Choices of ours where the description leaves room (each documented in lra/README.md):
- Different snakes (and the markers) keep ``clearance`` pixels apart. At 128 (3.5 px, wider than the 2-3 px gaps
  between the dashes of one snake) pixel connectivity decides the label; at 32 LRA's spacing leaves no room for
  that (dashes 1 px apart, snakes packed as densely): there, like in LRA, only continuity tells the snakes apart.
- Both target snakes are drawn in every image and B starts exactly as far from A's first end as A's other end:
  the layout does not depend on the label, so neither does the distance between the markers.
- ``continuity`` is read as the largest turn between successive paddles in units of 30 degrees. A snake about to
  run into the border turns away from it (`_Chunk.room`), and one that gets stuck backs up two paddles.
- Single-paddle distractors: 4 / 6 / 10 / 10 at 32 / 64 / 128 / 256; one contrast for everything.

Images are generated in chunks of chunk_size(R) images built in lockstep (vectorised over the chunk), each chunk a
pure function of (params, seed, chunk index): ``generate_chunk``; ``sample(params, seed, index)`` returns one.
``generate`` writes the LRA release layout (``pathfinder<R>/<difficulty folder>/imgs/<j>/sample_<i>.png`` and
``metadata/<j>.npy`` text lines) with one worker process per core, one chunk per work item.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

RESOLUTIONS = (32, 64, 128, 256)
# Contour length of the target snakes per difficulty (LRA: easy / intermediate / hard), and the release folder.
CONTOUR_LENGTHS = {"easy": 6, "intermediate": 9, "hard": 14}
DIFFICULTY_FOLDERS = {"easy": "curv_baseline", "intermediate": "curv_contour_length_9",
                      "hard": "curv_contour_length_14"}
IMAGES_PER_FOLDER = 1000  # images per imgs/<j> folder and metadata/<j>.npy file
# Images per size and resolution. tiny = one chunk (tests), small = smoke runs, full = LRA's 200,000.
SIZES = {"tiny": {32: 250, 64: 125, 128: 50, 256: 25}, "small": {32: 4000, 64: 2000, 128: 400, 256: 200},
         "full": dict.fromkeys(RESOLUTIONS, 200_000)}


@dataclasses.dataclass(frozen=True)
class PathfinderParams:
    """Generator settings. Lengths are in pixels of the final image; angles in radians.

    paddle_margin is a (low, high) range: each gap between successive paddles is drawn uniformly from it.
    """

    resolution: int
    contour_length: int  # paddles per target snake
    paddle_length: float
    paddle_margin: tuple[float, float]
    paddle_thickness: float
    padding: float  # nothing is drawn closer than this to the border
    marker_radius: float
    antialias: int  # drawn at resolution * antialias, then box-downsampled
    seed_distance: float  # smallest distance between the two markers
    max_turn: float  # largest turn between successive paddles (radians)
    distractor_length: int  # paddles per distractor snake
    n_distractor_snakes: int
    n_single_paddles: int
    contrast: float  # intensity = min(1, coverage * contrast)
    clearance: float  # gap kept between different snakes and markers (ours, see the module docstring)

    @property
    def pitch(self) -> float:
        """Mean distance between the starts of successive paddles."""
        return self.paddle_length + sum(self.paddle_margin) / 2


def continuity_to_turn(continuity: float) -> float:
    """Our reading of Linsley et al.'s `continuity`: the largest turn, in units of 30 degrees."""
    return continuity * math.pi / 6


def lra_params(resolution: int = 32, difficulty: str = "hard") -> PathfinderParams:
    """LRA's settings for 32 and 128 (lra_data.md); 64 lies between them and 256 is 128 scaled by 2 (ours).

    Path-X's paddle length is not in the description: 5 pixels (ours), so a hard snake spans most of the image.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    if difficulty not in CONTOUR_LENGTHS:
        raise ValueError(f"difficulty must be one of {tuple(CONTOUR_LENGTHS)}, got {difficulty!r}")
    k = CONTOUR_LENGTHS[difficulty]
    d = max(1, k // 3)  # distractor_length = contour_length // 3
    if resolution == 32:  # LRA Pathfinder
        return PathfinderParams(32, k, paddle_length=2.0, paddle_margin=(1.0, 1.0), paddle_thickness=0.5,
                                padding=1.0, marker_radius=1.5, antialias=2, seed_distance=7.0,
                                max_turn=continuity_to_turn(1.0), distractor_length=d,
                                n_distractor_snakes=20 // d, n_single_paddles=4, contrast=2.0, clearance=1.0)
    if resolution == 64:
        return PathfinderParams(64, k, paddle_length=3.5, paddle_margin=(1.5, 2.0), paddle_thickness=1.0,
                                padding=1.0, marker_radius=2.0, antialias=2, seed_distance=13.0,
                                max_turn=continuity_to_turn(1.4), distractor_length=d,
                                n_distractor_snakes=28 // d, n_single_paddles=6, contrast=1.4, clearance=2.5)
    scale = resolution // 128  # 128 = LRA Path-X; 256 = Path-X scaled by 2
    return PathfinderParams(resolution, k, paddle_length=5.0 * scale, paddle_margin=(2.0 * scale, 3.0 * scale),
                            paddle_thickness=1.5 * scale, padding=1.0, marker_radius=3.0 * scale, antialias=2,
                            seed_distance=20.0 * scale, max_turn=continuity_to_turn(1.8), distractor_length=d,
                            n_distractor_snakes=35 // d, n_single_paddles=10, contrast=0.9,
                            clearance=3.5 * scale)


# ---------------------------------------------------------------------------------------------
# Drawing: segments (a disc is a segment of length 0) on grids of `a` cells per pixel
# ---------------------------------------------------------------------------------------------


def _stamp(grid_BxSxS: np.ndarray, a: int, img_n: np.ndarray, P_nx2: np.ndarray, Q_nx2: np.ndarray,
           radius: float, value=True) -> None:
    """Set every cell of image img_n[k] whose centre lies within `radius` of segment P_nx2[k] -> Q_nx2[k].

    Points are (x, y) in pixels; cell (y, x) of a grid (B, a*R, a*R) has its centre at ((x + 0.5) / a,
    (y + 0.5) / a). Vectorised over all segments of all images: each gets a square window of cells large
    enough for the longest one.
    """
    P, Q = np.asarray(P_nx2, np.float64).reshape(-1, 2), np.asarray(Q_nx2, np.float64).reshape(-1, 2)
    if not len(P):
        return
    W = int(math.ceil((np.max(np.abs(Q - P)) + 2 * radius) * a)) + 2
    origin = np.floor((np.minimum(P, Q) - radius) * a).astype(np.int64)  # (n, 2) as (x, y)
    offs = np.arange(W)
    xs = origin[:, 0, None] + offs  # (n, W) cell indices
    ys = origin[:, 1, None] + offs
    d = Q - P
    inv_len2 = 1.0 / np.maximum((d * d).sum(1), 1e-12)
    rx = ((xs + 0.5) / a - P[:, :1])[:, None, :]  # (n, 1, W): cell centre minus P
    ry = ((ys + 0.5) / a - P[:, 1:])[:, :, None]  # (n, W, 1)
    dx, dy = d[:, 0, None, None], d[:, 1, None, None]
    t = np.clip((rx * dx + ry * dy) * inv_len2[:, None, None], 0.0, 1.0)  # projection onto the segment
    hit = (rx - t * dx) ** 2 + (ry - t * dy) ** 2 <= radius * radius  # (n, W, W)
    S = grid_BxSxS.shape[1]
    hit &= ((ys >= 0) & (ys < S))[:, :, None] & ((xs >= 0) & (xs < S))[:, None, :]
    k, i, j = np.nonzero(hit)
    grid_BxSxS[np.asarray(img_n)[k], ys[k, i], xs[k, j]] = value


def _unit(theta: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(theta), np.sin(theta)], axis=-1)


# ---------------------------------------------------------------------------------------------
# Placement, vectorised over a chunk of images that are built in lockstep
# ---------------------------------------------------------------------------------------------

_CANDIDATES = 8  # directions tried at once for each paddle
_BACKUP, _BACKTRACKS = 2, 6  # a stuck snake removes its last _BACKUP paddles and goes on, at most _BACKTRACKS times
_SNAKE_TRIES = 12  # fresh starts of one snake before giving up on it (then: a new image, or no such distractor)
_B_START_TRIES = 32  # directions tried for B's start point
_B_STARTS = 8  # of which this many free ones are tried
_RING = _unit(np.linspace(0, 2 * np.pi, 9)[:-1])  # points checked around a marker


def chunk_size(resolution: int) -> int:
    """Images generated together (part of the random stream: changing it changes the images). Larger chunks
    spread NumPy's per-call overhead over more images (at 32: 195 / 255 / 308 images per CPU second for chunks of
    250 / 500 / 1000); each divides IMAGES_PER_FOLDER."""
    return {32: 1000, 64: 250, 128: 50, 256: 25}[resolution]


class _Chunk:
    """Occupancy of B images being built: `blocked` marks fine cells where a new snake's centre line may not go
    (everything within paddle_thickness + clearance of a placed snake's centre line, and around the markers)."""

    def __init__(self, p: PathfinderParams, rng: np.random.Generator, B: int):
        self.p, self.rng, self.a = p, rng, p.antialias
        S = p.resolution * self.a
        # A border of `pad` cells, so candidates that leave the image can be looked up without clipping.
        self.pad = int(math.ceil((p.paddle_length + p.paddle_margin[1] + 1) * self.a)) + 1
        self.padded = np.zeros((B, S + 2 * self.pad, S + 2 * self.pad), bool)
        self.blocked = self.padded[:, self.pad:-self.pad, self.pad:-self.pad]  # a view: what _stamp writes
        self.lo = p.padding + p.paddle_thickness / 2
        self.hi = p.resolution - self.lo
        self.turn_radius = p.pitch / p.max_turn
        # Points checked along a candidate: about one per fine cell (the keep-out is several cells wide).
        self.along = np.linspace(0.0, 1.0, int(math.ceil(p.paddle_length * self.a)) + 1).astype(np.float32)

    def free(self, img_m: np.ndarray, S_mxKx2: np.ndarray, E_mxKx2: np.ndarray) -> np.ndarray:
        """(m, K) bool: which candidate segments S->E stay inside the padding and off blocked cells."""
        inside = ((np.minimum(S_mxKx2, E_mxKx2) >= self.lo) & (np.maximum(S_mxKx2, E_mxKx2) <= self.hi)).all(-1)
        # Candidates outside are looked up at the corner (their answer is False anyway), so no index is out of range.
        S32 = np.where(inside[..., None], S_mxKx2, self.lo).astype(np.float32)
        E32 = np.where(inside[..., None], E_mxKx2, self.lo).astype(np.float32)
        pts = S32[:, :, None, :] + self.along[:, None] * (E32 - S32)[:, :, None, :]
        cells = (pts * self.a + self.pad).astype(np.int32)  # (m, K, n, 2) as (x, y); inside the border
        W = self.padded.shape[1]
        flat = (img_m.astype(np.int64)[:, None, None] * W + cells[..., 1]) * W + cells[..., 0]
        hit = self.padded.reshape(-1)[flat].any(axis=2)
        return inside & ~hit

    def room(self, E_mxKx2: np.ndarray) -> np.ndarray:
        """Score in (0, 1] of candidate end points: 1 at least a turning radius from the border, less closer.

        Taking the best free candidate (the first, i.e. a random one, among ties) steers a snake away from the
        border only when it is about to run into it, so long snakes fit without bending everywhere.
        """
        edge = np.minimum(E_mxKx2 - self.lo, self.hi - E_mxKx2).min(-1)
        return np.clip(edge / self.turn_radius, 1e-3, 1.0)

    def block_snakes(self, img_m: np.ndarray, P_mxnx2: np.ndarray, Q_mxnx2: np.ndarray) -> None:
        n = P_mxnx2.shape[1]
        _stamp(self.blocked, self.a, np.repeat(img_m, n), P_mxnx2, Q_mxnx2,
               self.p.paddle_thickness + self.p.clearance)

    def block_markers(self, img_m: np.ndarray, C_mx2: np.ndarray) -> None:
        r = self.p.marker_radius + self.p.clearance + self.p.paddle_thickness / 2
        _stamp(self.blocked, self.a, img_m, C_mx2, C_mx2, r)

    def snakes(self, img_m: np.ndarray, n: int, starts_mx2: np.ndarray | None = None, accept=None,
               tries: int = _SNAKE_TRIES):
        """Place one snake of n paddles in each image img_m (indices into the chunk).

        Each next paddle starts one margin past the previous one's end, in a direction within max_turn of it;
        the best free one of _CANDIDATES random directions is taken (see `room`). A snake that gets stuck backs
        up _BACKUP paddles and goes on (at most _BACKTRACKS times), else starts again (up to `tries` times).
        starts_mx2: fixed first points (else uniform); accept(P, Q) -> bool mask: an extra condition on a
        finished snake. Every image advances in lockstep, each at its own paddle. Returns (ok (m,),
        P (m, n, 2), Q (m, n, 2)): the paddles' start and end points.
        """
        p, rng, K, L = self.p, self.rng, _CANDIDATES, self.p.paddle_length
        m = len(img_m)
        ok = np.zeros(m, bool)
        P, Q = np.zeros((m, n, 2)), np.zeros((m, n, 2))
        todo = np.arange(m)
        for _ in range(tries):
            if not todo.size:
                break
            k, img = todo.size, img_m[todo]
            s0 = rng.uniform(self.lo, self.hi, (k, 2)) if starts_mx2 is None else starts_mx2[todo]
            theta = rng.uniform(-np.pi, np.pi, (k, K))
            S = np.broadcast_to(s0[:, None, :], (k, K, 2))
            f = self.free(img, S, S + L * _unit(theta))
            alive = f.any(1)
            Pk, Qk, TH = np.zeros((k, n, 2)), np.zeros((k, n, 2)), np.zeros((k, n))
            TH[:, 0] = theta[np.arange(k), f.argmax(1)]
            Pk[:, 0], Qk[:, 0] = s0, s0 + L * _unit(TH[:, 0])
            step = np.ones(k, np.int64)  # paddles placed
            backs = np.zeros(k, np.int64)
            while True:
                live = np.flatnonzero(alive & (step < n))
                if not live.size:
                    break
                i = step[live]
                theta = TH[live, i - 1, None] + rng.uniform(-p.max_turn, p.max_turn, (live.size, K))
                u = _unit(theta)
                S = Qk[live, i - 1, None, :] + rng.uniform(*p.paddle_margin, (live.size, K, 1)) * u
                f = self.free(img[live], S, S + L * u)
                good = f.any(1)
                j = np.argmax(f * self.room(S + L * u), axis=1)
                r = np.flatnonzero(good)
                w, iw, jw = live[r], i[r], j[r]
                Pk[w, iw], Qk[w, iw], TH[w, iw] = S[r, jw], S[r, jw] + L * u[r, jw], theta[r, jw]
                step[w] += 1
                stuck = live[~good]
                backs[stuck] += 1
                step[stuck] = np.maximum(1, step[stuck] - _BACKUP)
                alive[stuck[backs[stuck] > _BACKTRACKS]] = False
            if accept is not None:
                alive &= accept(Pk, Qk)
            ok[todo[alive]] = True
            P[todo[alive]], Q[todo[alive]] = Pk[alive], Qk[alive]
            todo = todo[~alive]
        return ok, P, Q


def label_of(seed: int, index: int) -> int:
    """Label of image `index`: one of each pair (2k, 2k+1) is 1, chosen at random, so labels are exactly balanced."""
    pair_rng = np.random.default_rng([seed, index // 2, 0x1ab])
    return int((index % 2) == pair_rng.integers(2))


def generate_chunk(p: PathfinderParams, seed: int, chunk: int, size: int | None = None) -> dict[str, np.ndarray]:
    """Images chunk * B ... (+ B) of the stream `seed`, B = size or chunk_size(R): a pure function of (p, seed,
    chunk, B) (the data sets use B = chunk_size(R); tests may ask for fewer images).

    Returns {"images": uint8 (B, R, R), "labels": int (B,) (1 = markers on one snake), "markers": (B, 2, 2) as
    (x, y) pixel coordinates of the two marker centres}.
    """
    B = size or chunk_size(p.resolution)
    rng = np.random.default_rng([seed, chunk, p.resolution, p.contour_length])
    labels = np.array([label_of(seed, chunk * B + i) for i in range(B)])
    images = np.zeros((B, p.resolution, p.resolution), np.uint8)
    markers = np.zeros((B, 2, 2))
    pending = np.arange(B)
    while pending.size:  # images whose two target snakes did not fit are started again on a clean canvas
        done = _build(p, rng, labels[pending], images, markers, pending)
        pending = pending[~done]
    return {"images": images, "labels": labels, "markers": markers}


def _build(p, rng, labels_m, images, markers, out_m) -> np.ndarray:
    """Try to build len(out_m) images at once; write the finished ones to images[out_m], markers[out_m]."""
    m = len(out_m)
    ch = _Chunk(p, rng, m)
    every = np.arange(m)

    def far_enough(P, Q):  # A's ends at least seed_distance apart
        return np.linalg.norm(Q[:, -1] - P[:, 0], axis=1) >= p.seed_distance

    okA, PA, QA = ch.snakes(every, p.contour_length, accept=far_enough)
    a0, a1 = PA[:, 0], QA[:, -1]
    idx = every[okA]
    ch.block_snakes(idx, PA[idx], QA[idx])
    ch.block_markers(np.repeat(idx, 2), np.stack([a0[idx], a1[idx]], 1))
    # B starts exactly as far from A's first end as A's other end: the layout does not depend on the label, and
    # the distance between the two markers is the same number whichever the label.
    dist = np.linalg.norm(a1 - a0, axis=1)
    phi = rng.uniform(-np.pi, np.pi, (m, _B_START_TRIES))
    b0 = a0[:, None, :] + dist[:, None, None] * _unit(phi)  # (m, T, 2)
    ring = b0[:, :, None, :] + (p.marker_radius - p.paddle_thickness / 2) * _RING  # (m, T, 8, 2)
    pts = np.concatenate([b0[:, :, None, :], ring], 2).reshape(m, -1, 2)
    fits = ch.free(every, pts, pts).reshape(m, _B_START_TRIES, -1).all(2) & okA[:, None]
    # Try B from up to _B_STARTS of the free start points, a few directions from each.
    okB = np.zeros(m, bool)
    PB, QB = np.zeros_like(PA), np.zeros_like(QA)
    b_start = np.zeros((m, 2))
    for _ in range(_B_STARTS):
        idx = every[fits.any(1) & ~okB]
        if not idx.size:
            break
        t = fits[idx].argmax(1)
        fits[idx, t] = False
        b_start[idx] = b0[idx, t]
        okB[idx], PB[idx], QB[idx] = ch.snakes(idx, p.contour_length, starts_mx2=b_start[idx], tries=3)
    done = okA & okB
    idx = every[done]
    if not idx.size:
        return done
    ch.block_snakes(idx, PB[idx], QB[idx])
    ch.block_markers(idx, b_start[idx])
    pieces = [(idx, PA[idx], QA[idx]), (idx, PB[idx], QB[idx])]
    for n, count in ((p.distractor_length, p.n_distractor_snakes), (1, p.n_single_paddles)):
        for _ in range(count):
            ok, P, Q = ch.snakes(idx, n, tries=2)
            if ok.any():
                ch.block_snakes(idx[ok], P[ok], Q[ok])
                pieces.append((idx[ok], P[ok], Q[ok]))
    second = np.where(labels_m[idx, None] == 1, a1[idx], b_start[idx])
    mk = np.stack([a0[idx], second], 1)
    images[out_m[idx]] = render(p, m, pieces, mk, idx)
    markers[out_m[idx]] = mk
    return done


def render(p: PathfinderParams, m: int, pieces, markers_kx2x2: np.ndarray, img_k: np.ndarray) -> np.ndarray:
    """Draw paddles (thickness paddle_thickness, at least one fine cell wide) and the marker discs of images
    img_k (out of m); box-downsample by antialias; intensity min(1, coverage * contrast). uint8 (len(img_k), R, R).
    """
    a, R = p.antialias, p.resolution
    fine = np.zeros((m, R * a, R * a), np.float32)
    img = np.concatenate([np.repeat(i, P.shape[1]) for i, P, _ in pieces])
    P = np.concatenate([P.reshape(-1, 2) for _, P, _ in pieces])
    Q = np.concatenate([Q.reshape(-1, 2) for _, _, Q in pieces])
    _stamp(fine, a, img, P, Q, max(p.paddle_thickness, 1.0 / a) / 2, 1.0)
    C = markers_kx2x2.reshape(-1, 2)
    _stamp(fine, a, np.repeat(img_k, 2), C, C, p.marker_radius, 1.0)
    coverage = fine[img_k].reshape(len(img_k), R, a, R, a).mean(axis=(2, 4))
    return np.round(np.minimum(coverage * p.contrast, 1.0) * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Writing the release layout, in parallel
# ---------------------------------------------------------------------------------------------


def dataset_folder(root: str | os.PathLike, resolution: int, difficulty: str) -> Path:
    """<root>/pathfinder<R>/<difficulty folder>, as in the LRA release."""
    return Path(root) / f"pathfinder{resolution}" / DIFFICULTY_FOLDERS[difficulty]


def metadata_line(j: int, i: int, label: int, p: PathfinderParams) -> str:
    """One metadata line in the release's field order: folder, file, index, label, then generator settings."""
    return (f"imgs/{j} sample_{i}.png {i} {label} {p.max_turn:.4f} {p.contour_length} {p.distractor_length} "
            f"{p.paddle_length} {p.paddle_thickness} {p.paddle_margin[0]} 1")


def write_chunk(p: PathfinderParams, seed: int, folder: Path, chunk: int, n_images: int) -> tuple[int, list[str], list[int]]:
    """Generate chunk `chunk` and write its first n_images PNGs (compress_level 1: fast) into imgs/<j>/.

    Returns (chunk, metadata lines, label counts). Image index g = chunk * chunk_size + i lives in folder
    j = g // IMAGES_PER_FOLDER as sample_<g % IMAGES_PER_FOLDER>.png.
    """
    B = chunk_size(p.resolution)
    out = generate_chunk(p, seed, chunk)
    lines, counts = [], [0, 0]
    for i in range(n_images):
        g = chunk * B + i
        j, k = divmod(g, IMAGES_PER_FOLDER)
        img_dir = folder / "imgs" / str(j)
        img_dir.mkdir(parents=True, exist_ok=True)
        label = int(out["labels"][i])
        Image.fromarray(out["images"][i], mode="L").save(img_dir / f"sample_{k}.png", compress_level=1)
        lines.append(metadata_line(j, k, label, p))
        counts[label] += 1
    return chunk, lines, counts


def _write_text(path: Path, text: str) -> None:
    """Write a file via a temporary name in the same folder (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_chunk_star(args):
    return write_chunk(*args)


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def chunks_phrase(n_images: int, B: int) -> str:
    """How n_images were drawn in seeded chunks of B (for the log): 'as 1 seeded chunk', 'as 3 seeded chunks of
    1000', 'as 4 seeded chunks: 3 of 1000 and 1 of 250'."""
    full, rest = divmod(n_images, B)
    if full + (rest > 0) == 1:
        return "as 1 seeded chunk"
    if not rest:
        return f"as {full} seeded chunks of {B}"
    return f"as {full + 1} seeded chunks: {full} of {B} and 1 of {rest}"


def generate(root: str | os.PathLike, p: PathfinderParams, n_images: int, seed: int = 0, *,
             difficulty: str = "hard", workers: int | None = None, log: Callable[[str], None] = print) -> Path:
    """Write n_images in the release layout under root; return the difficulty folder.

    Work items are chunks of chunk_size(R) images, run by `workers` processes (default: every core; 'spawn'
    start method, safe inside a process that already runs JAX threads). Each image depends only on (p, seed,
    index), so the result does not depend on the number of workers. metadata/<j>.npy is written (via a temporary
    name) once every image of folder j is on disk, so a listed image always exists.
    """
    if p.resolution not in RESOLUTIONS or n_images < 1:
        raise ValueError(f"need a resolution in {RESOLUTIONS} and n_images >= 1, got {p.resolution}, {n_images}")
    folder = dataset_folder(root, p.resolution, difficulty)
    (folder / "metadata").mkdir(parents=True, exist_ok=True)
    B = chunk_size(p.resolution)
    jobs = [(p, seed, folder, c, min(B, n_images - c * B)) for c in range(math.ceil(n_images / B))]
    workers = max(1, min(workers or default_workers(), len(jobs)))
    n_chunks = len(jobs)
    per_folder = IMAGES_PER_FOLDER // B  # chunk_size divides IMAGES_PER_FOLDER
    waiting: dict[int, dict[int, list[str]]] = {}  # folder -> chunk -> metadata lines
    counts = np.zeros(2, np.int64)
    start = time.perf_counter()

    def collect(result):
        chunk, lines, c = result
        counts[:] += c
        j = chunk // per_folder
        waiting.setdefault(j, {})[chunk] = lines
        if len(waiting[j]) == min(per_folder, n_chunks - j * per_folder):
            parts = waiting.pop(j)
            _write_text(folder / "metadata" / f"{j}.npy", "".join(
                line + "\n" for c_ in sorted(parts) for line in parts[c_]))

    if workers == 1:
        for job in jobs:
            collect(_write_chunk_star(job))
    else:
        # Workers ignore SIGINT: a Ctrl-C reaches the whole process group, and only the parent should handle it
        # (it stops the pool and cleans up), not print one traceback per worker.
        with multiprocessing.get_context("spawn").Pool(workers, initializer=_ignore_sigint) as pool:
            for result in pool.imap_unordered(_write_chunk_star, jobs):
                collect(result)
    assert not waiting
    elapsed = time.perf_counter() - start
    log(f"generated {n_images} Pathfinder-{p.resolution} images ({difficulty}, labels {counts.tolist()}) "
        f"{chunks_phrase(n_images, B)} in {elapsed:.1f} s with {workers} process{'es' if workers > 1 else ''}")
    return folder


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def sample(p: PathfinderParams, seed: int, index: int) -> tuple[np.ndarray, int, np.ndarray]:
    """(image uint8 (R, R), label, markers (2, 2) as (x, y) pixels) of image `index` (generates its chunk)."""
    B = chunk_size(p.resolution)
    out = generate_chunk(p, seed, index // B)
    i = index % B
    return out["images"][i], int(out["labels"][i]), out["markers"][i]

