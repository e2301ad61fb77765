"""The fleet console: web pages for people, on the products' services."""
