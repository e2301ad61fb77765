"""Proxy v1: Services, PhoneNumbers, Sessions, Participants and Interactions."""
