"""Loading artifacts with cffi and calling kernels with raw pointers."""
