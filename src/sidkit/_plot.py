# Strategy: the demo's picture has to explain itself to a reader who has never heard of
# SO_REUSEPORT, so it says in words what the colours mean instead of leaving that to a
# colour bar: each panel's headline is the count ("191 of 200 sessions changed socket"), the
# two moves (NAT rebinding, Wi-Fi -> LTE) are drawn as labelled lines across every row, each
# change of socket inside a row is marked with a black triangle (readable without colour
# vision), and a footnote says why a change of colour is bad. A row is one session and is
# drawn several pixels high: beyond max_rows sessions only the first max_rows rows are drawn
# (the picture says so), while every count still covers all sessions. matplotlib is imported
# only here, only when a picture is asked for, so sidkit itself never needs it.
"""The picture of the mobility demo (``sidkit demo --plot``; needs matplotlib)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sidkit._errors import InputValueError

__all__ = ["MAX_ROWS", "ROW_INCHES", "plot_demo"]

#: Sessions drawn as rows at most; the default run's 200 all fit.
MAX_ROWS: Final = 200
#: Height of one session's row at the saved resolution (100 dpi: 6 pixels).
ROW_INCHES: Final = 0.06
_DPI: Final = 100
#: Why a change of colour matters, printed under the panels.
WHY: Final = (
    "Each row is one client session, each cell one of its datagrams, coloured by the socket "
    "that received it. A change of colour inside a row (marked \u25b6) means the session's "
    "next datagrams reached a socket that holds none of its state -- no QUIC connection, "
    "no DTLS association, no game state: the server drops them or starts over. "
    "One colour per row is what a server needs."
)


def plot_demo(
    result: Any,
    path: str,
    *,
    labels: Mapping[str, str],
    phases: Sequence[str],
    max_rows: int = MAX_ROWS,
    row_inches: float = ROW_INCHES,
) -> Any:
    """Draw sessions x datagrams, coloured by socket, one panel per mode, and write *path*.

    A row is one session (the first *max_rows* of them, *row_inches* high at 100 dpi); a
    row of one colour is a session that stayed on its socket, and every change of socket
    inside a row is marked. Lost datagrams are white. Returns the matplotlib Figure after
    writing *path* (the format follows the file name's extension, as matplotlib decides).
    """
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
        import numpy  # noqa: PLC0415 (a matplotlib dependency)
        from matplotlib.colors import Colormap, ListedColormap  # noqa: PLC0415
        from matplotlib.lines import Line2D  # noqa: PLC0415
        from matplotlib.patches import Patch  # noqa: PLC0415
    except ImportError as exc:
        raise InputValueError("--plot needs matplotlib: pip install 'sidkit[plot]'") from exc
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise InputValueError(f"max_rows must be a positive int, got {max_rows!r}")
    if not isinstance(row_inches, int | float) or not 0.01 <= row_inches <= 1:
        raise InputValueError(f"row_inches must be between 0.01 and 1, got {row_inches!r}")
    n = result.sockets
    cmap: Colormap
    if n <= 10:
        cmap = ListedColormap(list(getattr(plt.get_cmap("tab10"), "colors", ()))[:n])
    elif n <= 20:
        cmap = ListedColormap(list(getattr(plt.get_cmap("tab20"), "colors", ()))[:n])
    else:
        cmap = plt.get_cmap("viridis").resampled(n)
    cmap = cmap.with_extremes(bad="white")
    rows = min(result.sessions, max_rows)
    per_session = len(result.modes[0].sockets[0]) if result.modes[0].sockets else 0
    per_phase = max(1, per_session // len(phases))
    header, footer = 1.3, 1.45
    width = 3.0 * len(result.modes) + 0.9
    height = header + footer + rows * row_inches
    fig, axes = plt.subplots(
        1, len(result.modes), figsize=(width, height), squeeze=False, sharey=True, dpi=_DPI
    )
    fig.subplots_adjust(
        left=0.7 / width,
        right=1 - 0.2 / width,
        top=1 - header / height,
        bottom=footer / height,
        wspace=0.06,
    )
    for ax, m in zip(axes[0], result.modes, strict=True):
        shown = m.sockets[:rows]
        grid = numpy.ma.masked_invalid(
            numpy.array(
                [[numpy.nan if s is None else s for s in row] for row in shown], dtype=float
            )
        )
        ax.imshow(grid, aspect="auto", interpolation="nearest", cmap=cmap, vmin=-0.5, vmax=n - 0.5)
        # a thin white rule between sessions, so that neighbours of one colour stay two rows
        if rows > 1:
            ax.hlines(
                [y + 0.5 for y in range(rows - 1)],
                -0.5,
                per_session - 0.5,
                color="white",
                linewidth=min(1.0, row_inches * _DPI / 6),
            )
        # the moves: a labelled line at each phase boundary, across every row
        for k, phase in enumerate(phases[1:], start=1):
            x = k * per_phase - 0.5
            ax.axvline(x, color="black", linewidth=1.2, linestyle="--")
            ax.text(x, -0.5, phase.replace(" (", "\n("), ha="center", va="bottom", fontsize=8.5)
        # every change of socket inside a row: a triangle where the next socket starts
        xs, ys = [], []
        for y, row in enumerate(shown):
            previous = None
            for x, s in enumerate(row):
                if s is not None:
                    if previous is not None and s != previous:
                        xs.append(x - 0.5)
                        ys.append(y)
                    previous = s
        ax.plot(xs, ys, linestyle="none", marker=">", markersize=3.5, color="black")
        # the headline, in words: the test of the whole demo
        bad = m.changed > 0
        ax.set_title(
            f"{labels[m.mode]}\n{m.changed} of {result.sessions} sessions\nchanged socket",
            fontsize=11,
            color="#b00020" if bad else "#1b5e20",
            fontweight="bold",
            pad=30,
        )
        ax.set_xticks([p * per_phase + (per_phase - 1) / 2 for p in range(len(phases))])
        ax.set_xticklabels(["start", "new port", "new address"], fontsize=9)
        ax.set_xlabel(f"datagrams of each session ({per_phase} per path)", fontsize=9)
        step = 5 if rows <= 50 else 10 if rows <= 100 else 20
        ax.set_yticks(range(step - 1, rows, step), [str(i) for i in range(step, rows + 1, step)])
        ax.tick_params(axis="y", labelsize=8)
    ylabel = "session (one row each)"
    if rows < result.sessions:
        ylabel = f"sessions 1-{rows} of {result.sessions} (one row each)"
    axes[0][0].set_ylabel(ylabel, fontsize=9)
    handles: list[Any] = []
    if n <= 20:
        handles = [Patch(color=cmap(i), label=f"socket {i}") for i in range(n)]
    handles += [
        Patch(facecolor="white", edgecolor="grey", label="lost"),
        Line2D([], [], linestyle="none", marker=">", color="black", label="changed socket here"),
    ]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(len(handles), 6),
        fontsize=9,
        frameon=False,
        bbox_to_anchor=(0.5, 0.62 / height),
    )
    if n > 20:
        bar = fig.colorbar(axes[0][-1].images[0], ax=axes[0].tolist(), fraction=0.03)
        bar.set_label("socket")
    why = "\n".join(textwrap.wrap(WHY, width=int(width * 13.5)))
    fig.text(0.5, 0.06 / height, why, ha="center", va="bottom", fontsize=8.5)
    try:
        fig.savefig(path, dpi=_DPI)
    except (OSError, ValueError) as exc:
        raise InputValueError(f"cannot write the plot to {path}: {exc}") from exc
    return fig
