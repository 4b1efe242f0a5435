# Copyright 2026 The memvit authors. Licensed under the Apache License, Version 2.0.
"""The synthetic set's classes: data, not code. A class names the behaviour (drawn by :mod:`.render`,
planned by :mod:`.plan`) that carries it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...cli import UserError
from ..ava_files import LABEL_TYPES
from ..ava_files import label_map_text as _label_map_text


class SyntheticParameterError(UserError, ValueError):
    """A generator parameter the synthetic set cannot be made with (a user's value, said as such);
    any other exception from the generator is a bug and keeps its traceback."""

# AVA's label types (ava_files.LABEL_TYPES)
PERSON_MOVEMENT = "PERSON_MOVEMENT"
OBJECT_MANIPULATION = "OBJECT_MANIPULATION"
PERSON_INTERACTION = "PERSON_INTERACTION"
MOVEMENTS = ("stand", "walk", "run", "jump")  # exactly one per person at any time, as in AVA's pose classes
INTERACTIONS = ("talk", "handshake")  # need a partner: two persons standing face to face
SIGNALS = ("signal_orange", "signal_lime")  # long-range: a scene-wide light, answered seconds later
SHOWN_PREFIX = "see_"  # "see_signal_orange": the light while it is on (a local class)
BEHAVIOURS = (*MOVEMENTS, "carry", "wave", *INTERACTIONS, *SIGNALS, *(SHOWN_PREFIX + s for s in SIGNALS))


@dataclass(frozen=True)
class ActionClass:
    """One label of the label map. Its id is its 1-based position in the class list."""

    name: str  # written to the label map, AVA style
    label_type: str  # one of LABEL_TYPES
    behaviour: str  # one of BEHAVIOURS: what the persons with this label visibly do


DEFAULT_CLASSES: tuple[ActionClass, ...] = (
    ActionClass("stand", PERSON_MOVEMENT, "stand"),  # still
    ActionClass("walk", PERSON_MOVEMENT, "walk"),  # translates, legs and arms swing
    ActionClass("run/jog", PERSON_MOVEMENT, "run"),  # translates ~2.7x faster, wider and faster strides
    ActionClass("jump/leap", PERSON_MOVEMENT, "jump"),  # vertical hops in place
    ActionClass("carry/hold (an object)", OBJECT_MANIPULATION, "carry"),  # a yellow block in the back hand
    ActionClass("hand wave", PERSON_INTERACTION, "wave"),  # the front arm raised, oscillating
    ActionClass("talk to (e.g., self, a person, a group)", PERSON_INTERACTION, "talk"),  # facing, blinking speech arcs
    ActionClass("hand shake", PERSON_INTERACTION, "handshake"),  # facing, front arms joined, pumping
)
LONG_RANGE_CLASSES: tuple[ActionClass, ...] = DEFAULT_CLASSES + (
    # "see": while the room is lit orange (lime). "answer": 2-5 s after the light's centre; the light is never
    # in the labelled keyframe's clip, and nothing else about the person differs.
    ActionClass("see an orange signal", PERSON_INTERACTION, SHOWN_PREFIX + "signal_orange"),  # local
    ActionClass("see a lime signal", PERSON_INTERACTION, SHOWN_PREFIX + "signal_lime"),  # local
    ActionClass("answer an orange signal", PERSON_INTERACTION, "signal_orange"),  # long-range
    ActionClass("answer a lime signal", PERSON_INTERACTION, "signal_lime"),  # long-range
)


def check_classes(classes: Sequence[ActionClass]) -> None:
    """Reject class lists the planner cannot honour (unknown behaviours, duplicates, bad label types)."""
    if not classes:
        raise SyntheticParameterError("classes: need at least one class")
    names = [c.name for c in classes]
    behaviours = [c.behaviour for c in classes]
    for c in classes:
        if c.behaviour not in BEHAVIOURS:
            raise SyntheticParameterError(f"class {c.name!r}: unknown behaviour {c.behaviour!r} "
                                          f"(known: {', '.join(BEHAVIOURS)})")
        if c.label_type not in LABEL_TYPES:
            raise SyntheticParameterError(f"class {c.name!r}: label_type must be one of {LABEL_TYPES}, "
                                          f"got {c.label_type!r}")
        if '"' in c.name or "\n" in c.name:
            raise SyntheticParameterError(f"class {c.name!r}: the name cannot hold quotes or newlines (label map)")
    if len(set(names)) != len(names) or len(set(behaviours)) != len(behaviours):
        raise SyntheticParameterError("classes: names and behaviours must be unique")



def label_map_entries(classes: Sequence[ActionClass]) -> list[tuple[int, str, str]]:
    """``(label_id, name, label_type)`` of each class: its id is its 1-based position."""
    return [(i + 1, c.name, c.label_type) for i, c in enumerate(classes)]


def label_map_text(classes: Sequence[ActionClass]) -> str:
    """The 2019 ActivityNet-style label map (``label { name label_id label_type }``) of ``classes``."""
    return _label_map_text(label_map_entries(classes))
