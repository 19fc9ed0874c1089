"""Errors of the study-data package; each carries the CLI exit code it maps to."""

from __future__ import annotations

FETCH_HINT = "agentsim data fetch {name}"


class DataError(Exception):
    """Base class. `exit_code`: 2 for a bad argument, 3 when the source could not be reached or sent something
    that is not the pinned data; 1 when the data is simply not there yet."""

    exit_code = 2


class UnknownDataset(DataError):
    """A dataset name that is not in `agentsim.data.DATASETS`."""


class DataNotFound(DataError):
    """No copy of the dataset in any place the resolver looks (the message lists them and the fetch command)."""

    exit_code = 1


class DataIncomplete(DataError):
    """A copy was found where the resolver looks, but files are missing or of the wrong size."""


class FetchError(DataError):
    """The download failed: host unreachable, HTTP error, timeout, or a body shorter than announced."""

    exit_code = 3


class IntegrityError(DataError):
    """The downloaded archive is not the pinned data: another commit, a damaged archive, a file missing or with
    another SHA-256 than the manifest's."""

    exit_code = 3
