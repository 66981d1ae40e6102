"""What every layer shares: the error users see, every limit and default, file writing and
hashing, a small thread-safe LRU. Imports nothing else of MedEdit."""
