"""diagnostics stage of ENSO Bridge."""
