"""idealized stage of ENSO Bridge."""
