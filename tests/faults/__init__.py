"""The fault suite: kills, a bad network, bad input, leaked secrets — and the table of it."""
