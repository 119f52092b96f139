"""models stage of ENSO Bridge."""
