"""Exports: provenance carried by every file, PNG and animations, the ZIP, DICOM Secondary
Capture, and synthetic imagefolder datasets."""
