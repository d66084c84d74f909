"""edgest target ``coreai``: Apple Core AI ``.aimodel`` assets, checked on Apple's bundled runtime."""
