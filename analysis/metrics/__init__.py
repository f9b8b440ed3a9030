"""2. Metrics: populations, the definitions table, one window engine, statistics, the run's settings.

Imports only from `analysis` base modules and the folders before it."""
