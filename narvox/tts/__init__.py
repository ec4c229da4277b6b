"""Text-to-speech over codec tokens: the shared core (narvox.tts.core), the aligned conditioning
(narvox.tts.aligner), sampling (narvox.tts.sampling, torch-free) and the backends (ar: VALL-E)."""
