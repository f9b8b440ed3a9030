"""3. Insights: defects by cause, removal triage, roll-off, spikes.

Imports only from `analysis` base modules and the folders before it."""
