"""Evaluation: WER/CER, codec quality, TTS intelligibility."""
