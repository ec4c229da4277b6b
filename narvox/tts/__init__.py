"""Text-to-speech over codec tokens: the shared core (core, conditioning, aligner, levels),
torch-free sampling and generation loops (sampling, decoding, mask_predict), the backends (ar:
VALL-E; masked: MaskGCT / MAGNeT) and the API (api: narvox.TTS)."""
