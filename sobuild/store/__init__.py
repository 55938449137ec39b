"""The on-disk store: files are the truth, sqlite is the index."""
