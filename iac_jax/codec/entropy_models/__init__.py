"""Entropy models: the factorized density of `z` and the indexed Gaussian of `y`."""

from iac_jax.codec.entropy_models import gaussian
from iac_jax.codec.entropy_models.factorized import FactorizedDensity, factorized_tables
from iac_jax.codec.entropy_models.tables import CdfTables

__all__ = ['CdfTables', 'FactorizedDensity', 'factorized_tables', 'gaussian']
