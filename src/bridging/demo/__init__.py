"""demo stage of ENSO Bridge."""
