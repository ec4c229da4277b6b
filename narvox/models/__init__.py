"""Shared neural network blocks for ASR and TTS."""
