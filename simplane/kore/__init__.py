"""KORE's flavour of Super SIM and Programmable Wireless: the same resources, served from KORE's
hosts with OAuth 2.0 client credentials (see `views.py`)."""
