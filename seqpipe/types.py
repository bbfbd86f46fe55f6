"""Constrained option types for component constructors; seqpipe's config validation reads them."""

from typing import Annotated

from annotated_types import Ge, Gt, Le

PositiveInt = Annotated[int, Gt(0)]
NonNegativeInt = Annotated[int, Ge(0)]
PositiveFloat = Annotated[float, Gt(0)]
NonNegativeFloat = Annotated[float, Ge(0)]
Probability = Annotated[float, Ge(0), Le(1)]
