"""Export of a page-state chain to PRISM's explicit format (``.tra`` transitions, ``.lab``
labels): the chain, its initial state and one label per criterion, for model checkers."""

from __future__ import annotations

import re

import numpy as np

from ecology.exact.chain import CHUNK, PageChain
from ecology.exact.markov import DENSE_LIMIT, ChainError, MarkovChain, StationaryLaw, gth, stationary, times_power  # noqa: F401  (re-exported: the chain's API used to live here)


def prism_identifier(name: str, taken: set[str]) -> str:
    """``name`` made a PRISM identifier (``[A-Za-z_][A-Za-z0-9_]*``, not ``init``/``deadlock``), unique."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not ident or ident[0].isdigit():
        ident = "_" + ident
    base, i = ident, 1
    while ident in taken or ident in ("init", "deadlock"):
        ident, i = f"{base}_{i}", i + 1
    taken.add(ident)
    return ident


def write_prism(prefix, pc: PageChain, labels: dict[str, np.ndarray]) -> dict[str, str]:
    """PRISM explicit files ``PREFIX.tra`` (``n m`` then ``i j p`` rows), ``PREFIX.lab`` (label
    declarations ``0="init" 1="deadlock" 2="NAME" ...`` then ``state: label ...``) and ``PREFIX.sta``
    (``(w1,...,wk)`` then ``i:(t1,...,tk)``, tokens as indices, pad = V, deleted-token slot = V + 1).
    Load with ``prism -importtrans PREFIX.tra -importlabels PREFIX.lab -importstates PREFIX.sta -dtmc``.
    Returns the PRISM identifier of each criterion."""
    from pathlib import Path

    prefix = Path(prefix)
    P = pc.chain.P.tocoo()
    order = np.lexsort((P.col, P.row))
    with open(prefix.with_suffix(".tra"), "w") as f:
        f.write(f"{pc.chain.n_states} {P.nnz}\n")
        for lo in range(0, P.nnz, CHUNK):
            sel = order[lo : lo + CHUNK]
            f.writelines(f"{i} {j} {p!r}\n" for i, j, p in zip(P.row[sel].tolist(), P.col[sel].tolist(), P.data[sel].tolist()))
    taken: set[str] = set()
    names = {name: prism_identifier(name, taken) for name in labels}
    members: dict[int, list[int]] = {pc.initial: [0]}
    for index, mask in enumerate(labels.values(), start=2):
        for state in np.flatnonzero(mask).tolist():
            members.setdefault(state, []).append(index)
    with open(prefix.with_suffix(".lab"), "w") as f:
        f.write(" ".join(['0="init"', '1="deadlock"'] + [f'{i}="{names[n]}"' for i, n in enumerate(labels, start=2)]) + "\n")
        f.writelines(f"{state}: {' '.join(map(str, members[state]))}\n" for state in sorted(members))
    width = pc.windows.shape[1]
    with open(prefix.with_suffix(".sta"), "w") as f:
        f.write("(" + ",".join(f"w{i + 1}" for i in range(width)) + ")\n")
        for lo in range(0, pc.chain.n_states, CHUNK):
            rows = pc.windows[lo : lo + CHUNK].tolist()
            f.writelines(f"{lo + i}:({','.join(map(str, row))})\n" for i, row in enumerate(rows))
    return names
