"""1. Inputs: Amazon's exports read by header into typed frames, with the quarantine.

Imports only from `analysis` base modules and the folders before it."""
