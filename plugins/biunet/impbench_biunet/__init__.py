"""impbench plugin: BiU-Net: a biologically informed 1-D U-Net for reference-free genotype imputation."""

from impbench import hookimpl


@hookimpl
def register_imputers(register):
    """Registers nothing yet: the imputer is being written."""
