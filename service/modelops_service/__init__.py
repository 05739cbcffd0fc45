"""modelops_service: the BentoML prediction service with inline drift and outlier monitoring."""
