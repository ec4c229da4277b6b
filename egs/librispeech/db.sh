# Where the corpus lives: the directory holding LibriSpeech/ as the openslr tarballs extract.
LIBRISPEECH=${LIBRISPEECH:-/data/librispeech}
