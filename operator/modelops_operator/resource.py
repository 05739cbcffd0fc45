"""The ModelDeployment's identity (API group, version, names) and the words its status uses.

Small and import-free so that the API edge, the builders and the handlers need not import the CRD
generator (crd.py, which builds the whole schema from these).
"""

from __future__ import annotations

GROUP = "modelops.dev"
VERSION = "v1alpha1"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ["mdep"]
CATEGORIES = ["modelops"]
CRD_NAME = f"{PLURAL}.{GROUP}"
# status.drift.state (drift_status.py computes it; the CRD enumerates it).
DRIFT_STATES = ("Drift", "NoDrift", "Collecting", "Unknown", "Disabled")
