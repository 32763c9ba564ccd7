"""EVE: energy-adaptive models — several modes over one weight store (issue 11).

``modes`` holds what a mode is in the artifact (nested block lists per layer, validation, per-mode views and
sizes); ``train`` trains the modes jointly (``compress --modes K``).
"""
