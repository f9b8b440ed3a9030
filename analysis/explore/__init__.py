"""5. Explore: the notebooks' interactive explorers.

Imports only from `analysis` base modules and the folders before it."""
