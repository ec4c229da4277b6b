"""What every codec does to its inputs before the network runs: the checks and the padding.

One definition for both runtimes: `narvox.codecs.Codec` (PyTorch) and `narvox.runtime.OnnxCodec`
call these on numpy arrays, so they accept, refuse and pad exactly the same inputs. It lives in
narvox.runtime because that package never imports torch (narvox.codecs does, on import).

The rules:
  * audio is [T] (one item) or [B, T] (a batch, rows zero-padded at the end). A 2-D array is
    always read as [B, T]: [C, T] channels-first audio cannot be told from a batch of C items
    and is encoded as C items. [T, C] (what soundfile reads) and any array with more rows than
    samples are refused as transposed: mix to mono with `narvox.audio.to_mono` first.
  * audio is float in [-1, 1], or int16 PCM, which is scaled by 1/32768 (`as_float_audio`);
    other integer types are refused, as are empty, NaN and infinite audio.
  * codes are integers [B, Q, F] with 1 <= Q <= the codec's codebooks, F >= 1, each in
    [0, codebook_size). Float codes are refused, never truncated.
  * batch independence: an item's codes and audio do not depend on its batch-mates. The networks
    are non-causal, so an item's last frames see a few frames past its end. Every item is
    therefore followed by the codec's `context_frames` (how far it looks ahead; CONTEXT_FRAMES
    unless the codec says otherwise) of the same padding alone as in a batch: zeros after audio
    (the zeros a batch pads with), and its last frame repeated after codes (rows shorter than the
    batch say so with `lengths`).
"""
from __future__ import annotations

import numpy as np

from narvox.audio import as_float_audio, resample
from narvox.errors import AudioError, NarvoxError

# The SEANet frame-rate convolutions have kernels of 7 and reflect-pad by 3 frames; the exported
# graph's reflect padding needs inputs longer than that, so no network input is shorter.
MIN_FRAMES = 7
# How far past an item's end its last frame looks (hop 320, encodec's SEANet kernels). Encoder:
# the conv after the LSTM (kernel 7) 3 frames, the convs before it 234 samples more: 3.7 frames.
# Decoder: its first conv 3 frames, the upsampling under 1 more (3.65 measured). With 4 frames the
# shipped codec gives the same codes alone and in a batch, and audio within 5e-7. Causal models
# (EnCodec 24 kHz) look nowhere ahead and lose nothing but the time of 4 frames. Codecs that look
# further (a Vocos-style decoder) say how far: CodecConfig.context_frames, narvox.json's
# "context_frames".
CONTEXT_FRAMES = 4


def num_frames(num_samples: int, hop_length: int) -> int:
    return -(-num_samples // hop_length)


def check_sample_rate(rate, codec: str) -> None:
    if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool) or rate <= 0:
        raise AudioError(f"{codec} codec: sample rate must be a positive integer, got {rate!r}")


def audio_batch(wav, codec: str, codec_rate: int, sample_rate: int | None = None) -> np.ndarray:
    """User audio -> checked float32 [B, T] at `codec_rate` (see the rules above)."""
    source = f"{codec} codec"
    try:
        wav = np.asarray(wav)
    except ValueError:  # a list of rows of different lengths
        raise AudioError(f"{source}: rows of a batch must be zero-padded to one length, [B, T]") from None
    wav = as_float_audio(wav, source)
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2:
        raise AudioError(f"{source} encodes [T] or [B, T] mono audio, got shape {wav.shape}")
    rows, samples = wav.shape
    if rows > samples and samples <= 2:
        raise AudioError(f"{source}: audio of shape {wav.shape} looks like [T, channels] (stereo as "
                         f"soundfile reads it); mix to mono (narvox.audio.to_mono) or pass [B, T]")
    if rows > samples:
        raise AudioError(f"{source}: a batch of shape {wav.shape} has more rows than samples, so it is "
                         f"probably transposed; pass [B, T] (or [T] for one item)")
    if sample_rate is not None:
        check_sample_rate(sample_rate, codec)
        if sample_rate != codec_rate:
            wav = np.stack([resample(row, int(sample_rate), codec_rate) for row in wav])
    return np.ascontiguousarray(wav, dtype=np.float32)


def pad_audio(wav: np.ndarray, hop_length: int, min_frames: int = MIN_FRAMES,
              context_frames: int = CONTEXT_FRAMES) -> tuple[np.ndarray, int]:
    """[B, T] -> (zero-padded network input, F: how many frames of codes the input has). Zeros to
    whole frames and `context_frames` beyond, so a row followed by a batch's zero padding sees
    exactly what it sees alone."""
    frames = num_frames(wav.shape[1], hop_length)
    total = max(frames + context_frames, min_frames) * hop_length
    return np.pad(wav, ((0, 0), (0, total - wav.shape[1]))), frames


def codes_batch(codes, codec: str, codebook_size: int, max_codebooks: int) -> np.ndarray:
    """User codes -> checked int64 [B, Q, F]."""
    codes = np.asarray(codes)
    if codes.ndim != 3:
        hint = " (one item's [Q, F] codes: pass codes[None])" if codes.ndim == 2 else ""
        raise NarvoxError(f"{codec} codec decodes codes [B, Q, F], got shape {codes.shape}{hint}")
    if not np.issubdtype(codes.dtype, np.integer):  # float codes would be truncated silently
        raise NarvoxError(f"{codec} codec: codes must be integers, got dtype {codes.dtype}")
    batch, depth, frames = codes.shape
    if not 1 <= depth <= max_codebooks:
        raise NarvoxError(f"{codec} codec has {max_codebooks} codebooks, codes [B, Q, F] have {depth}")
    if batch == 0 or frames == 0:
        raise NarvoxError(f"{codec} codec: codes of shape {codes.shape} are empty "
                          f"({'0 frames' if frames == 0 else '0 items'})")
    low, high = codes.min(), codes.max()
    if low < 0 or high >= codebook_size:
        raise NarvoxError(f"{codec} codec: codes must lie in [0, {codebook_size}), got [{low}, {high}]")
    return codes.astype(np.int64)


def pad_codes(codes: np.ndarray, codec: str, lengths=None, min_frames: int = MIN_FRAMES,
              context_frames: int = CONTEXT_FRAMES) -> np.ndarray:
    """[B, Q, F] -> the network input: each row's last frame (its `lengths[b]`-th, where given)
    repeated over whatever follows it and `context_frames` beyond, so a row decodes as it does
    alone whatever its batch padded it with."""
    batch, _, frames = codes.shape
    if lengths is None:
        lengths = np.full(batch, frames)
    lengths = np.asarray(lengths)
    if lengths.shape != (batch,) or not np.issubdtype(lengths.dtype, np.integer):
        raise NarvoxError(f"{codec} codec: lengths must be {batch} integers (frames of each row), "
                          f"got {lengths.tolist()!r}")
    if lengths.min() < 1 or lengths.max() > frames:
        raise NarvoxError(f"{codec} codec: lengths must lie in [1, {frames}] frames, got {lengths.tolist()}")
    total = max(frames + context_frames, min_frames)
    # frame index each output frame copies: itself up to the row's length, then the row's last one
    index = np.minimum(np.arange(total)[None, :], lengths[:, None] - 1)  # [B, total]
    return np.take_along_axis(codes, index[:, None, :], axis=2)
