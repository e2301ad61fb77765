"""The Twilio conventions, written once: SIDs, auth, errors, parameters, paging, URLs, clock."""
