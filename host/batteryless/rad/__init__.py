"""RAD: block-circulant ADMM training and fixed-point quantization."""
