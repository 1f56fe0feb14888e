"""The report's figures as PNG (matplotlib, headless): Fig. 3 (costs in seconds) and Fig. 5 (destinations)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display: the report is written by a command line or a server
import matplotlib.pyplot as plt

from maxent_irl.roads import FEATURE_TABLE

__all__ = ["plot_costs", "plot_destination_error", "plot_destinations"]


def plot_costs(path: Path, names: Sequence[str], learned: dict, learned_se: dict, true: dict | None,
               present: np.ndarray) -> None:
    """Fig. 3: learned costs in seconds per km / per turn, with 1.96 SE bars, next to the true costs."""
    group = {f.name: f.group for f in FEATURE_TABLE}
    panels = [
        ("road class (s/km at 30-50 km/h, 1 lane)", ("road_class",)),
        ("speed and lane adjustments (s/km)", ("speed", "lanes")),
        ("turns and segment (s each)", ("turn", "constant")),
    ]
    shown = [n for j, n in enumerate(names) if present[j]]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), gridspec_kw={"width_ratios": [1.2, 0.9, 1.3]})
    for ax, (title, groups) in zip(axes, panels, strict=True):
        feats = [n for n in shown if group.get(n, "constant") in groups]
        x = np.arange(len(feats))
        width = 0.4 if true is not None else 0.7
        err = [1.96 * learned_se[n] if np.isfinite(learned_se[n]) else 0.0 for n in feats]
        ax.bar(x - (width / 2 if true is not None else 0), [learned[n] for n in feats], width, yerr=err,
               capsize=3, label="learned (MaxEnt, ±1.96 SE)", color="tab:blue")
        if true is not None:
            ax.bar(x + width / 2, [true[n] for n in feats], width, label="true (simulation)", color="tab:orange")
        values = [abs(learned[n]) for n in feats] + ([abs(true[n]) for n in feats] if true is not None else [])
        if values:  # huge error bars of barely identified weights are cut at 2x the largest bar
            lim = 2.0 * max(max(values), 1e-9)
            ax.set_ylim(max(ax.get_ylim()[0], -lim), min(ax.get_ylim()[1], lim))
        ax.set_xticks(x, [n.removeprefix("km_").removeprefix("turn_") for n in feats], rotation=45, ha="right")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_title(title)
        ax.set_ylabel("cost (s)")
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle("Learned costs in seconds (1 km of residential road at 30-50 km/h := 72 s, i.e. 50 km/h)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_destinations(path: Path, fractions: Sequence[float], acc: dict[int, np.ndarray],
                      prior_acc: dict[int, float], n_regions: int) -> None:
    """Fig. 5: top-1 / top-3 destination-region accuracy versus the fraction of the trip observed."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for k, color in zip(sorted(acc), ("tab:blue", "tab:green", "tab:red"), strict=False):
        ax.plot(fractions, 100 * acc[k], "o-", color=color, label=f"MaxEnt top-{k}")
        ax.axhline(100 * prior_acc[k], color=color, linestyle=":", label=f"prior only top-{k}")
    ax.set_xlabel("fraction of the trip observed (distance)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Destination prediction among {n_regions} regions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_destination_error(path: Path, result: dict) -> None:
    """Mean destination error (km, 95 % interval) and top-k within the radius (%) per fraction observed."""
    fr = [100 * f for f in result["fractions"]]
    rows = [result["by_fraction"][f"{round(f)}%"] for f in fr]
    hit_key = f"top{result['top']}_within_{round(result['radius_m'])}m"
    fig, (ax_e, ax_h) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = ("tab:blue", "tab:red", "tab:gray", "tab:green")
    for i, (method, color) in enumerate(zip(result["methods"], colors, strict=False)):
        x = np.asarray(fr) + (i - 1.5) * 0.8  # side by side, so the bars do not hide each other
        mean = np.array([r[method]["mean_km"] for r in rows])
        if i == 0:
            err = None
        else:  # the paired interval of posterior - method, drawn around the method's mean
            half = np.array([(r["posterior_minus"][method]["error_km"]["ci95_high"]
                              - r["posterior_minus"][method]["error_km"]["ci95_low"]) / 2 for r in rows])
            err = half
        ax_e.errorbar(x, mean, yerr=err, fmt="o-", color=color, capsize=3, label=method)
        ax_h.plot(fr, [100 * r[method][hit_key] for r in rows], "o-", color=color, label=method)
    ax_e.set_xlabel("trip observed (% of its length)")
    ax_e.set_ylabel("mean error of the point named (km)")
    ax_e.set_title(f"Destination error, {result['n_trips']} held-out trips (bars: paired 95 % CI vs posterior)",
                   fontsize=9)
    ax_h.set_xlabel("trip observed (% of its length)")
    ax_h.set_ylabel(f"a top-{result['top']} place within {round(result['radius_m'])} m (%)")
    ax_h.set_ylim(0, 100)
    for ax in (ax_e, ax_h):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
