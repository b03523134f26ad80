"""JSON Schemas of the settlement files, one per kind and version (data files)."""
