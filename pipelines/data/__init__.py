"""Data: the attribute registry, the procedural phantoms, and converters of public datasets into
the imagefolder layout."""
