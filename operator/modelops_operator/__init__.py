"""modelops operator: the ModelDeployment CRD and its kopf controller."""
