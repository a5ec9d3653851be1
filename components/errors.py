"""Errors raised across components; a leaf module, so any component can raise them."""


class DataLoadError(Exception):
    """A data source that cannot be read; the message names the place and what to do."""
