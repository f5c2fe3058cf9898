"""The spec table: one ``OpSpec`` per registry op, collected from the family modules."""

from tests.op_specs import activation, elementwise, indexing, linalg, nn, reduce, shape
from tests.op_specs.common import OpSpec, Sample

ALL_SPECS: list[OpSpec] = [
    *activation.SPECS,
    *elementwise.SPECS,
    *indexing.SPECS,
    *linalg.SPECS,
    *nn.SPECS,
    *reduce.SPECS,
    *shape.SPECS,
]
SPECS_BY_KEY: dict[tuple[str, str], OpSpec] = {(s.domain, s.op_type): s for s in ALL_SPECS}

__all__ = ["ALL_SPECS", "SPECS_BY_KEY", "OpSpec", "Sample"]
