"""The linear assignment problem with "leave it unlinked" as an option (Jaqaman et al.,
Nature Methods 2008, the cost matrix of their Fig. 1).

Sources (objects of one frame, or track ends) are linked one-to-one to targets (objects
of the next frame, or track starts) so that the summed cost is least, where every source
or target may instead stay unlinked at its own alternative cost. The block matrix

    [ links      | source alt (diagonal) ]
    [ target alt | links transposed      ]

always has a perfect matching, which the sparse Jonker-Volgenant solver of scipy finds
(``min_weight_full_bipartite_matching``); only the candidate links are stored, so a frame
of thousands of objects stays cheap.
"""

from __future__ import annotations

import numpy as np


def solve(
    rows: np.ndarray,
    cols: np.ndarray,
    costs: np.ndarray,
    *,
    n_sources: int,
    n_targets: int,
    source_alt: float,
    target_alt: float,
) -> list[tuple[int, int]]:
    """The chosen links ``(source, target)`` among the candidates ``rows[k] -> cols[k]``
    costing ``costs[k]`` (any finite numbers), each source and target used at most once,
    minimising the links' costs plus ``source_alt`` for each unlinked source and
    ``target_alt`` for each unlinked target."""
    if len(rows) == 0 or n_sources == 0 or n_targets == 0:
        return []
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    costs = np.asarray(costs, np.float64)
    # the transposed block costs nothing, so the objective is exactly links + alternatives;
    # every perfect matching has n_sources + n_targets edges, so adding one constant to all
    # costs keeps the optimum and makes every stored weight positive (a stored zero could
    # read as "no edge")
    shift = 1.0 - min(float(costs.min()), source_alt, target_alt, 0.0)
    s, t = n_sources, n_targets
    src, tgt = np.arange(s), np.arange(t)
    r = np.concatenate([rows, src, s + tgt, s + cols])
    c = np.concatenate([cols, t + src, tgt, t + rows])
    w = np.concatenate([costs, np.full(s, source_alt), np.full(t, target_alt), np.zeros(len(rows))])
    matrix = coo_matrix((w + shift, (r, c)), shape=(s + t, t + s)).tocsr()
    row_ind, col_ind = min_weight_full_bipartite_matching(matrix)
    return [(int(i), int(j)) for i, j in zip(row_ind, col_ind, strict=True) if i < s and j < t]
