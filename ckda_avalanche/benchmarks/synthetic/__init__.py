"""Embedded synthetic VI-ReID generator writing RegDB, SYSU-MM01, LLCM and HITSZ-VCM in their official layouts.

The project's default benchmark: ``generate_synthetic(root)`` writes four small datasets whose domains differ
(resolution, illumination, noise, infrared physics, attribute distributions), read back by the real readers.
"""
from .domains import DOMAINS, LLCM_DOMAIN, REGDB_DOMAIN, SYSU_DOMAIN, VCM_DOMAIN, DomainSpec
from .generate import (
    DATASET_DIRS,
    MARKER,
    SYNTHETIC_VERSION,
    SyntheticParametersError,
    SyntheticSummary,
    generate_synthetic,
    identity_counts,
    synthetic_folder,
    write_dataset,
)
from .identity import IdentityAttributes, sample_identities, sample_identity
from .writers import DatasetCounts

__all__ = [
    "DATASET_DIRS", "DOMAINS", "LLCM_DOMAIN", "MARKER", "REGDB_DOMAIN", "SYNTHETIC_VERSION", "SYSU_DOMAIN",
    "VCM_DOMAIN", "DatasetCounts", "DomainSpec", "IdentityAttributes", "SyntheticParametersError",
    "SyntheticSummary", "generate_synthetic", "identity_counts", "sample_identities", "sample_identity",
    "synthetic_folder", "write_dataset",
]
