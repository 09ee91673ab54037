"""The local stack: AWS resources and functions built from template.yaml, served by moto."""
