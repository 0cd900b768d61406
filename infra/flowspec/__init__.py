"""CloudFlow flow definitions (FDL, SpecVersion v1), parsed and checked (pure): the part of the spec the
project runs. The local CloudFlow runs what `parse_definition` accepts, and `autotag deploy` refuses any
other definition before it reaches CloudFlow, naming the field; neither depends on the other."""

from .definition import DefinitionError, Flow, parse_definition

__all__ = ["DefinitionError", "Flow", "parse_definition"]
