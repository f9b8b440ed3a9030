"""6. Deliver: what takes a report to people (e-mail).

Imports only from `analysis` base modules and the folders before it."""
