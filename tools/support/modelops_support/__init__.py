"""Development harnesses, not shipped in any image: local MLflow server, local `bentoml serve`, local
operator (`kopf run`), the process supervisor of the local cluster's components, and free ports.

Tests, the demo and the benchmarks use them; the product packages (modelops_operator, modelops_service,
modelops_training) never import them.
"""
