"""io stage of ENSO Bridge."""
