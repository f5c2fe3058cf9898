"""The spec table: one ``OpSpec`` per registry op, collected from the family modules."""

from tests.op_specs import (
    activation,
    attention,
    bitwise,
    control,
    conv,
    elementwise,
    image,
    indexing,
    linalg,
    loss,
    microsoft,
    misc,
    nn,
    pool,
    quant,
    recurrent,
    reduce,
    shape,
    signal,
)
from tests.op_specs.common import OpSpec, Sample

_FAMILIES = (
    activation,
    attention,
    bitwise,
    control,
    conv,
    elementwise,
    image,
    indexing,
    linalg,
    loss,
    microsoft,
    misc,
    nn,
    pool,
    quant,
    recurrent,
    reduce,
    shape,
    signal,
)
ALL_SPECS: list[OpSpec] = [spec for family in _FAMILIES for spec in family.SPECS]
SPECS_BY_KEY: dict[tuple[str, str], OpSpec] = {(s.domain, s.op_type): s for s in ALL_SPECS}

__all__ = ["ALL_SPECS", "SPECS_BY_KEY", "OpSpec", "Sample"]
