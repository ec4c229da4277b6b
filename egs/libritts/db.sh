# Where the corpus lives: the directory holding LibriTTS/ as the openslr tarballs extract.
LIBRITTS=${LIBRITTS:-/data/libritts}
