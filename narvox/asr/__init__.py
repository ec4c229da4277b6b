"""Speech recognition: CTC, Paraformer and the attention-decoder baseline."""
