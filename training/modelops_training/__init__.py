"""Training pipeline: wine-quality data, a searched classifier and its detectors, registered in MLflow."""
