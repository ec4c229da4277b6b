"""Energy-based speech detection and splitting of long recordings at silences. Torch-free."""
from __future__ import annotations

import numpy as np

FRAME = 0.01  # seconds


def frame_energy_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    hop = int(sample_rate * FRAME)
    n = max(1, len(samples) // hop)
    frames = samples[:n * hop].reshape(n, hop) if len(samples) >= hop else samples[None]
    return 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)


def has_speech(samples: np.ndarray, sample_rate: int, floor_db: float = -55.0) -> bool:
    """False for digital silence and near-silent noise: nothing for a recognizer to hear."""
    return bool((frame_energy_db(samples, sample_rate) > floor_db).any())


def split_at_silences(samples: np.ndarray, sample_rate: int, max_seconds: float,
                      search_seconds: float = 5.0) -> list[tuple[int, int]]:
    """Cut points (start, end) in samples so no piece exceeds `max_seconds`.

    Each cut goes to the quietest 100 ms inside the last `search_seconds` before the limit, so
    words are not split unless the recording has no pause at all.
    """
    total = len(samples)
    limit = int(max_seconds * sample_rate)
    if total <= limit:
        return [(0, total)]
    energy = frame_energy_db(samples, sample_rate)
    smooth = np.convolve(energy, np.ones(10) / 10, mode="same")
    hop = int(sample_rate * FRAME)
    pieces, start = [], 0
    while total - start > limit:
        hi = (start + limit) // hop
        lo = max(start // hop + 1, hi - int(search_seconds / FRAME))
        cut = (lo + int(np.argmin(smooth[lo:hi]))) * hop
        pieces.append((start, cut))
        start = cut
    pieces.append((start, total))
    return pieces
