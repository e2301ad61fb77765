"""Operator endpoints and commands that belong to no product: the clock."""
