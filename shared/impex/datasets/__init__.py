"""Datasets: typed schemas of a tenant's records and where the records live."""

from impex.datasets.model import Dataset, DatasetDefinition, DatasetField, FieldType
from impex.datasets.store import DatasetStore

__all__ = ["Dataset", "DatasetDefinition", "DatasetField", "DatasetStore", "FieldType"]
