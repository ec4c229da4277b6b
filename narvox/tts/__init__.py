"""Text-to-speech over codec tokens: the shared core (core, conditioning, aligner, levels),
torch-free sampling and generation loops (sampling, decoding, mask_predict, pseudo_ar), the backends
(ar: VALL-E; masked: MaskGCT / MAGNeT; par: PALLE's pseudo-AR) and the API (api: narvox.TTS)."""
