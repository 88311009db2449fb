"""Hypothesis strategies built from msgspec type information.

`struct_strategy(cls)` generates instances of any msgspec Struct type from its declared
fields, so every registered event type (built-in or user-defined) gets a generator
without one being written by hand. Only values JSON can carry faithfully are generated:
floats are finite, ``Any`` holds JSON values (None, bool, int, float, str, lists, dicts).
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FINITE_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
TEXT = st.text(max_size=12)

JSON_SCALARS = st.one_of(st.none(), st.booleans(), INT64, FINITE_FLOATS, TEXT)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(TEXT, children, max_size=4),
    ),
    max_leaves=12,
)
"""Values that survive a JSON round trip unchanged (lists, never tuples)."""


def _no_constraints(info: Any, *names: str) -> None:
    for name in names:
        if getattr(info, name) is not None:
            raise NotImplementedError(f"constraint {name} of {info!r} is not supported by the strategy")


def from_type_info(info: mi.Type) -> st.SearchStrategy[Any]:
    """A strategy for values of the msgspec type described by ``info``."""
    if isinstance(info, mi.StrType):
        _no_constraints(info, "min_length", "max_length", "pattern")
        return TEXT
    if isinstance(info, mi.BoolType):
        return st.booleans()
    if isinstance(info, mi.IntType):
        _no_constraints(info, "gt", "ge", "lt", "le", "multiple_of")
        return INT64
    if isinstance(info, mi.FloatType):
        _no_constraints(info, "gt", "ge", "lt", "le", "multiple_of")
        return FINITE_FLOATS
    if isinstance(info, mi.NoneType):
        return st.none()
    if isinstance(info, mi.LiteralType):
        return st.sampled_from(info.values)
    if isinstance(info, mi.UnionType):
        return st.one_of(*(from_type_info(member) for member in info.types))
    if isinstance(info, mi.VarTupleType):
        return st.lists(from_type_info(info.item_type), max_size=4).map(tuple)
    if isinstance(info, mi.TupleType):
        return st.tuples(*(from_type_info(item) for item in info.item_types))
    if isinstance(info, mi.ListType):
        return st.lists(from_type_info(info.item_type), max_size=4)
    if isinstance(info, mi.DictType):
        return st.dictionaries(from_type_info(info.key_type), from_type_info(info.value_type), max_size=4)
    if isinstance(info, mi.AnyType):
        return JSON_VALUES
    if isinstance(info, mi.StructType):
        return _struct_from_info(info)
    raise NotImplementedError(f"no strategy for msgspec type {info!r}")


def _struct_from_info(info: mi.StructType) -> st.SearchStrategy[Any]:
    required = {f.name: from_type_info(f.type) for f in info.fields if f.required}
    optional = {f.name: from_type_info(f.type) for f in info.fields if not f.required}
    cls = info.cls
    return st.fixed_dictionaries(required, optional=optional).map(lambda kwargs: cls(**kwargs))


def struct_strategy(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    """Instances of the Struct type ``cls``; fields with defaults are sometimes left out."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType), f"{cls!r} is not a msgspec Struct type"
    return _struct_from_info(info)
