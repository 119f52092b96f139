"""da stage of ENSO Bridge."""
