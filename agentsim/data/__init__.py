"""The studies' data, fetched the user's way: pinned sources, checksums, the user cache, one resolver for paths.

    agentsim data fetch escalaition      # download, verify and install into the user cache
    agentsim data path escalaition       # where the resolver finds it

    from agentsim.data import locate
    root = locate("escalaition").path    # explicit path > $AGENTSIM_DATA/<name> > user cache > ../shared

The data itself never ships with agentsim (the study's repository carries no license); the package holds only
each dataset's pinned commit and the SHA-256 of every file (`manifests/<name>.json`).
"""

from agentsim.data.errors import (
    DataError,
    DataIncomplete,
    DataNotFound,
    FetchError,
    IntegrityError,
    UnknownDataset,
)
from agentsim.data.fetch import FetchResult, fetch
from agentsim.data.resolve import DATA_ENV, Place, cache_dir, locate, places, problems
from agentsim.data.sources import DATASETS, Dataset, get_dataset

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "DataError",
    "DataIncomplete",
    "DataNotFound",
    "Dataset",
    "FetchError",
    "FetchResult",
    "IntegrityError",
    "Place",
    "UnknownDataset",
    "cache_dir",
    "fetch",
    "get_dataset",
    "locate",
    "places",
    "problems",
]
