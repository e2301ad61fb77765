"""Super SIM v1."""
