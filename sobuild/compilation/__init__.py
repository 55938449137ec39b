"""Turning a batch of missing kernels into shared objects: translation units and one ninja run."""
