"""Export of a page-state chain to Storm's two explicit inputs, which Storm (and stormpy) read as
they are: the DRN format (one file) and Storm's explicit ``.tra``/``.lab`` pair with a state-reward
file.

Both carry the chain ``P`` (each probability as Python's ``repr``, the shortest decimal that reads
back as the same double), the label ``init`` on the initial page-state, one label per criterion
(as in :func:`ecology.exact.prism.write_prism`) and the reward model ``steps``, a state reward of 1
on every page-state. Storm collects a state's reward on leaving it and not at the target, so
``R{"steps"}=? [F "C"]`` is ``E_x[T_C]``, ``T_C = min{t >= 0 : X_t in C}`` (``inf`` where ``C``
may be missed), the expected hitting time of the report; ``LRA=? ["C"]`` is the long-run fraction
of steps spent in ``C``, ``sum_{i in C} pi_i`` for the stationary law ``pi`` reached from ``init``.

Label names are PRISM identifiers (:func:`ecology.exact.prism.prism_identifier`) cut to
:data:`LABEL_LIMIT` characters (Storm's explicit labelling parser refuses 128 or more).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecology.exact.chain import CHUNK, PageChain
from ecology.exact.prism import prism_identifier

REWARD_MODEL = "steps"  # a state reward of 1 per step: R{"steps"}=? [F "C"] is the expected hitting time of C
LABEL_LIMIT = 100  # characters of a criterion's name kept in a label (Storm's .lab parser holds at most 127)


def canonical(pc: PageChain):
    """The chain's ``P`` as CSR with sorted column indices and no duplicate entries (Storm reads the
    transitions of a state in increasing target order and refuses a transition given twice); a
    copy only where ``P`` is not already so."""
    P = pc.chain.P.tocsr()
    if not P.has_canonical_format:
        P = P.copy()
        P.sum_duplicates()
    return P


def storm_labels(pc: PageChain, labels: dict[str, np.ndarray]) -> tuple[dict[str, str], dict[int, list[str]]]:
    """The Storm label of each criterion (a unique PRISM identifier, at most :data:`LABEL_LIMIT`
    characters plus a numbering suffix, never ``init``/``deadlock``) and, per labelled state, its
    labels in order (``init`` first on the initial state)."""
    taken: set[str] = set()
    names = {name: prism_identifier(name[:LABEL_LIMIT], taken) for name in labels}
    members: dict[int, list[str]] = {pc.initial: ["init"]}
    for name, mask in labels.items():
        for state in np.flatnonzero(mask).tolist():
            members.setdefault(state, []).append(names[name])
    return names, members


def write_storm_explicit(prefix, pc: PageChain, labels: dict[str, np.ndarray]) -> dict[str, str]:
    """Storm's explicit files: ``PREFIX.tra`` (first line ``dtmc``, then ``i j p`` in row-major
    order; Storm counts the states from the largest index), ``PREFIX.lab`` (``#DECLARATION``, the
    label names, ``#END``, then ``i label ...`` in increasing ``i``) and ``PREFIX.rew`` (``i 1`` for
    every state: the reward model ``steps``). Load with ``storm --explicit PREFIX.tra PREFIX.lab
    --staterew PREFIX.rew`` or ``stormpy.build_model_from_explicit(tra, lab, state_rewards=rew)``.
    Returns the label of each criterion."""
    prefix = Path(prefix)
    P = canonical(pc)
    rows = np.repeat(np.arange(pc.chain.n_states), np.diff(P.indptr))
    with open(prefix.with_suffix(".tra"), "w") as f:
        f.write("dtmc\n")
        for lo in range(0, P.nnz, CHUNK):
            f.writelines(f"{i} {j} {p!r}\n" for i, j, p in zip(rows[lo : lo + CHUNK].tolist(),
                                                                 P.indices[lo : lo + CHUNK].tolist(),
                                                                 P.data[lo : lo + CHUNK].tolist()))
    names, members = storm_labels(pc, labels)
    with open(prefix.with_suffix(".lab"), "w") as f:
        f.write("#DECLARATION\n" + " ".join(["init", *names.values()]) + "\n#END\n")
        f.writelines(f"{state} {' '.join(members[state])}\n" for state in sorted(members))
    with open(prefix.with_suffix(".rew"), "w") as f:
        for lo in range(0, pc.chain.n_states, CHUNK):
            f.writelines(f"{i} 1\n" for i in range(lo, min(lo + CHUNK, pc.chain.n_states)))
    return names


def write_drn(path, pc: PageChain, labels: dict[str, np.ndarray]) -> dict[str, str]:
    """Storm's DRN file ``path``: the header (``@type: DTMC``, ``@value_type: double``, an empty
    ``@parameters``, ``@reward_models`` ``steps``, ``@nr_states`` and ``@nr_choices``, both ``n``),
    then ``@model`` and per state ``state i [1] labels``, ``action 0`` and its transitions
    ``j : p``, as Storm's own DRN exporter writes a DTMC. Load with ``storm --explicit-drn PATH`` or
    ``stormpy.build_model_from_drn(PATH)``. Returns the label of each criterion."""
    P = canonical(pc)
    n = pc.chain.n_states
    names, members = storm_labels(pc, labels)
    with open(path, "w") as f:
        f.write(f"// page-state chain of {pc.compiled.scenario.name!r} (states numbered as in states.txt)\n"
                f"@type: DTMC\n@value_type: double\n@parameters\n\n@reward_models\n{REWARD_MODEL}\n"
                f"@nr_states\n{n}\n@nr_choices\n{n}\n@model\n")
        for lo in range(0, n, CHUNK):
            hi = min(lo + CHUNK, n)
            starts = (P.indptr[lo : hi + 1] - P.indptr[lo]).tolist()  # row i's entries: starts[i - lo] .. starts[i - lo + 1]
            targets = P.indices[P.indptr[lo] : P.indptr[hi]].tolist()
            probabilities = P.data[P.indptr[lo] : P.indptr[hi]].tolist()
            lines = []
            for i, a, b in zip(range(lo, hi), starts, starts[1:]):
                lines.append(f"state {i} [1]{''.join(f' {label}' for label in members.get(i, ()))}\n\taction 0\n")
                lines.extend(f"\t\t{j} : {p!r}\n" for j, p in zip(targets[a:b], probabilities[a:b]))
            f.writelines(lines)
    return names
