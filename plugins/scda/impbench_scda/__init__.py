"""impbench plugin: SCDA: convolutional denoising autoencoder imputer."""

from impbench import hookimpl


@hookimpl
def register_imputers(register):
    """Registers nothing yet: the imputer is being written."""
