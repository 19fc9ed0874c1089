"""Make the README's figures (docs/figures/*.png): one per family, from short runs of the shipped scenarios, drawn by
the same functions as `agentsim analyze ... --out` and the notebooks, at 150 dpi (small PNGs for the README; the
analyses write 300 dpi).

    python scripts/readme_figures.py                     # all four
    python scripts/readme_figures.py wargame social      # some of them
    python scripts/readme_figures.py --out /tmp/figs     # elsewhere

wargame: ES per day, three scenarios x 3 seeds x 14 days of the scripted baseline, the study's curves overlaid when
its data is on this machine (`agentsim data fetch escalaition`); social: the cascade-size CCDF with the power law and
its alternatives (2,000 users, 24 steps, scripted); tournament: E[S] of the CSD example; drift: D_t per
arm of the rewrite scenario as SmolLM2-135M-Instruct answered it through vLLM (the shipped recording
`drift/recordings/rewrite-smollm2`, replayed), so the README shows the measurement itself.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("NO_COLOR", "1")

import agentsim  # noqa: E402
from agentsim.analysis import plots  # noqa: E402

README_DPI = 150
ROOT = Path(__file__).resolve().parents[1]


def wargame(tmp: Path) -> object:
    from agentsim.analysis.escalation import compare_runs, escalation_figure

    logs = [agentsim.run(f"wargame/{sc}.yaml", backend="scripted", steps=14, seed=seed, run_dir=tmp / f"{sc}-{seed}")
            for sc in ("neutral", "invasion", "cyberattack") for seed in (0, 1, 2)]
    return escalation_figure(compare_runs(logs), logs)


def social(tmp: Path) -> object:
    from agentsim.analysis.cascades import plot_ccdf
    from agentsim.analysis.labels import run_label, runs_title
    from agentsim.analysis.social import cascade_table

    log = agentsim.run("social/x_information_spread.yaml", backend="scripted", steps=24, run_dir=tmp / "x",
                       **{"world.users.count": 2000})
    return plot_ccdf(cascade_table(log)["size"].to_numpy(), title=runs_title("Cascade sizes", [log]) + f" ({run_label(log)})")


def tournament(tmp: Path) -> object:
    from agentsim.analysis.labels import runs_title
    from agentsim.analysis.tournament import expected_score_spread, plot_expected_scores

    log = agentsim.run("tournament/csd_example.yaml", backend="scripted", steps=2, run_dir=tmp / "csd")
    return plot_expected_scores(expected_score_spread(log), title=runs_title("Expected win score E[S]", [log]))


def drift(tmp: Path) -> object:
    from agentsim.analysis.drift import drift_tables, plot_curves, reminder_turns, turns_table
    from agentsim.analysis.labels import run_label, runs_title

    # SmolLM2-135M-Instruct's answers and token scores, recorded through vLLM and shipped: replayed, no model needed
    log = agentsim.run("drift/rewrite.yaml", backend="replay", replay_from=RECORDING, run_dir=tmp / "drift")
    t = drift_tables(log, bootstrap=200)
    return plot_curves(t["curves_mc"], reminders=reminder_turns(turns_table(log.events)), recurrence=t.get("recurrence"),
                       title=runs_title("Drift D_t (Monte-Carlo)", [log]) + f" ({run_label(log)})")


#: The shipped recording of the drift scenario (scenarios/drift/recordings/): `agentsim run drift/rewrite.yaml` made it.
RECORDING = "drift/recordings/rewrite-smollm2"

FIGURES: dict[str, Callable[[Path], object]] = {"wargame": wargame, "social": social, "tournament": tournament, "drift": drift}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("families", nargs="*", metavar="FAMILY", help=f"which figures ({', '.join(FIGURES)}; default: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figures", help="folder of the PNGs (default: docs/figures)")
    args = ap.parse_args()
    unknown = sorted(set(args.families) - set(FIGURES))
    if unknown:
        ap.error(f"unknown famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    args.families = args.families or list(FIGURES)
    plots.DPI = README_DPI  # README copies: small files; `--out` of the analyses keeps 300 dpi
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.families:
            path = args.out / f"{name}.png"
            plots.save(FIGURES[name](Path(tmp) / name), path)
            print(f"{path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
