"""4. Report: the HTML kit, the report's context and sections, charts, periods, rendering.

Imports only from `analysis` base modules and the folders before it."""
