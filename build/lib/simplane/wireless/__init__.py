"""Programmable Wireless v1: Sims, RatePlans, Commands, DataSessions and UsageRecords."""
