"""Write a comparison's results as report.md, PNG plots (matplotlib, Agg) and results.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from training.evaluation.compare import mean_by, summary_rows


def write_report(results: dict[str, Any], out: str | Path) -> Path:
    """Write everything into `out` (created if needed) and return the report's path."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=_plain))
    plots = _loss_plots(results, out) + _confusion_plots(results, out)
    path = out / "report.md"
    path.write_text(_markdown(results, plots), encoding="utf-8")
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- markdown ------------------------------------------------------------------------------------


def _markdown(results: dict[str, Any], plots: list[str]) -> str:
    rows, k, split = summary_rows(results), results["k"], results["split"]
    best = rows[results["best_run"]]
    lines = [
        "# Model comparison",
        "",
        f"Data: `{results['data_source']}`; seeded split (seed {split['seed']}): "
        f"{split['train']:,} train / {split['validation']:,} validation / {split['test']:,} test "
        f"ratings. Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; the grid took "
        f"{results['seconds']:.0f} s.",
        "",
        "Each run stops early on validation loss, keeps its best weights, then is refitted on "
        "train+validation for that many epochs. Validation metrics come from the first fit; test "
        "metrics from the refitted model, measured once and used to choose nothing. The best run "
        "(marked ★) is the one with the lowest **validation** RMSE.",
        "",
        "## Rating accuracy",
        "",
        "| | model | optimizer (lr) | val RMSE | val MAE | val MSE | test RMSE | test MAE | "
        "test MSE | epochs to best | train s | s to best | parameters |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {'★' if r['best'] else ''} | {r['model']} | {r['optimizer']} ({r['lr']:g}) | "
            f"{r['val_rmse']:.4f} | {r['val_mae']:.4f} | {r['val_mse']:.4f} | "
            f"{r['test_rmse']:.4f} | {r['test_mae']:.4f} | {r['test_mse']:.4f} | "
            f"{r['best_epoch']} | {r['seconds']:.1f} | {r['seconds_to_best']:.1f} | "
            f"{r['parameters']:,} |"
        )
    for message in results.get("diverged", []):
        lines.append(f"| | (diverged) | {message} |" + " |" * 10)
    lines += [
        "",
        _optimizer_paragraph(rows),
        "",
        f"Best run: **{best['model']} with {best['optimizer']}**, validation RMSE "
        f"{best['val_rmse']:.4f}, test RMSE {best['test_rmse']:.4f}.",
        "",
    ]
    lines += _ranking_section(results, rows, k)
    lines += _confusion_section(results, rows)
    lines += ["## Plots", ""] + [f"![{name}]({name})" for name in plots] + [""]
    return "\n".join(lines)


def _optimizer_paragraph(rows: list[dict[str, Any]]) -> str:
    """Which optimizer converged fastest and which generalised best, from the numbers."""
    optimizers = sorted({r["optimizer"] for r in rows})
    if len(optimizers) < 2:
        return f"Only one optimizer ({optimizers[0]}) was run, so there is nothing to compare."
    to_best = mean_by(rows, "optimizer", "seconds_to_best")
    epochs = mean_by(rows, "optimizer", "best_epoch")
    val = mean_by(rows, "optimizer", "val_rmse")
    gap = mean_by(rows, "optimizer", "train_gap")
    fastest = min(to_best, key=to_best.__getitem__)
    slowest = max(to_best, key=to_best.__getitem__)
    general = min(val, key=val.__getitem__)
    wins = dict.fromkeys(optimizers, 0)
    for model in {r["model"] for r in rows}:
        mine = [r for r in rows if r["model"] == model]
        wins[min(mine, key=lambda r: r["val_rmse"])["optimizer"]] += 1
    ranked_val = ", ".join(f"{o} {val[o]:.4f}" for o in sorted(val, key=val.__getitem__))
    ranked_gap = ", ".join(f"{o} {gap[o]:+.4f}" for o in sorted(gap, key=gap.__getitem__))
    return (
        f"**Convergence.** Averaged over the models, **{fastest}** reached its best validation "
        f"loss fastest: {to_best[fastest]:.1f} s of training ({epochs[fastest]:.1f} epochs), "
        f"against {to_best[slowest]:.1f} s ({epochs[slowest]:.1f} epochs) for {slowest}. "
        f"**Generalisation.** **{general}** generalised best, with the lowest mean validation "
        f"RMSE ({ranked_val}) and the best validation RMSE for {wins[general]} of "
        f"{len({r['model'] for r in rows})} models. The mean gap between validation and "
        f"training RMSE at the best epoch (smaller = less overfitting): {ranked_gap}."
    )


SPLIT_WORDS = {  # TrainConfig.split_by in the report's words
    "rating": "a random share of all ratings held out",
    "user": "each user's ratings cut 8:1:1 (RecBole's split)",
    "time": "the newest ratings of all held out (one cut-off in time)",
    "user-time": "each user's newest ratings held out",
}
RANKING_COLUMNS = (("precision", "Precision"), ("recall", "Recall"), ("ndcg", "NDCG"),
                   ("hit_rate", "HitRate"), ("map", "MAP"), ("coverage", "Coverage"))  # fmt: skip


def ranking_table(named: list[tuple[str, dict[str, Any]]], k: int) -> list[str]:
    """A markdown table of top-k metrics, one row per (label, metrics)."""
    header = " | ".join(f"{title}@{k}" for _, title in RANKING_COLUMNS)
    lines = [f"| model | {header} |", "|---" * (len(RANKING_COLUMNS) + 1) + "|"]
    for label, metrics in named:
        cells = " | ".join(f"{metrics[key]:.4f}" for key, _ in RANKING_COLUMNS)
        lines.append(f"| {label} | {cells} |")
    return lines


def _ranking_section(results: dict[str, Any], rows: list[dict[str, Any]], k: int) -> list[str]:
    def named(key: str) -> list[tuple[str, dict[str, Any]]]:
        out = [("popularity baseline", results["popularity"][key])]
        if results.get("retrieval"):
            out.append(("retrieval vectors (/recommend's default)", results["retrieval"][key]))
        out += [
            (f"{run['model']} + {run['optimizer']} (by rating)", run[key])
            for run in results["runs"]
        ]
        return out

    split = SPLIT_WORDS.get(results.get("split_by") or "rating", SPLIT_WORDS["rating"])
    pop = results["popularity"]
    return [
        f"## Top-{k} on the test split",
        "",
        f"Split: {split}. Every item the user did not rate in the data the model was fitted on is "
        "ranked, by the retrieval vectors' scores or by a rating model's predicted rating. "
        f"Coverage: the share of the catalogue that appears in at least one user's top-{k}.",
        "",
        f"Relevant = test ratings >= {results['relevant_from']:g}; mean over the "
        f"{pop['ranking']['users']:,} test users with a relevant item:",
        "",
        *ranking_table(named("ranking"), k),
        "",
        "Every held-out rating relevant (RecBole's definition, full ranking); mean over the "
        f"{pop['ranking_all']['users']:,} test users:",
        "",
        *ranking_table(named("ranking_all"), k),
        "",
    ]


def _confusion_section(results: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    first = results["runs"][0]["confusion"]
    lines = [
        "## Liked / not liked on the test split",
        "",
        f"A rating above the training mean ({first['threshold']:.3f}) is *liked*, for the actual "
        "and for the predicted rating. Counts are test ratings.",
        "",
        "| model | optimizer | liked, predicted liked (TP) | liked, predicted not (FN) | "
        "not liked, predicted liked (FP) | not liked, predicted not (TN) | precision | recall "
        "| F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in results["runs"]:
        c, m = run["confusion"], run["confusion"]["matrix"]
        lines.append(
            f"| {run['model']} | {run['optimizer']} | {m['liked']['liked']:,} | "
            f"{m['liked']['not_liked']:,} | {m['not_liked']['liked']:,} | "
            f"{m['not_liked']['not_liked']:,} | {c['precision']:.4f} | {c['recall']:.4f} | "
            f"{c['f1']:.4f} |"
        )
    return [*lines, ""]


# --- plots ---------------------------------------------------------------------------------------


def _loss_plots(results: dict[str, Any], out: Path) -> list[str]:
    """Train and validation MSE per epoch: one figure per model (optimizers overlaid) and one per
    optimizer (models overlaid)."""
    runs = results["runs"]
    names = []
    for key, other in (("model", "optimizer"), ("optimizer", "model")):
        for value in sorted({r[key] for r in runs}):
            mine = [r for r in runs if r[key] == value]
            name = f"loss_{key}_{value}.png"
            _loss_figure(mine, other, f"{key} {value}: train and validation MSE", out / name)
            names.append(name)
    return names


def _loss_figure(runs: list[dict[str, Any]], label_key: str, title: str, path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, run in enumerate(runs):
        history, color = run["history"], f"C{i}"
        epochs = np.arange(1, len(history["rmse"]) + 1)
        # MSE without the regularisation term: comparable between train and validation.
        ax.plot(epochs, np.square(history["rmse"]), "--", color=color, alpha=0.7)
        if "val_rmse" in history:
            ax.plot(
                epochs,
                np.square(history["val_rmse"]),
                "-",
                color=color,
                label=f"{run[label_key]} (best epoch {run['best_epoch']})",
            )
            ax.plot(
                run["best_epoch"],
                np.square(history["val_rmse"][run["best_epoch"] - 1]),
                "o",
                color=color,
            )
    ax.set(title=title, xlabel="epoch", ylabel="MSE (dashed: train, solid: validation)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _confusion_plots(results: dict[str, Any], out: Path) -> list[str]:
    """One heatmap per run, side by side in one figure, the best run's title starred."""
    import matplotlib.pyplot as plt

    runs = results["runs"]
    cols = min(len(runs), 5)
    rows = -(-len(runs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 3.0 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(runs):
            ax.axis("off")
            continue
        run, m = runs[i], runs[i]["confusion"]["matrix"]
        counts = np.array(
            [
                [m["liked"]["liked"], m["liked"]["not_liked"]],
                [m["not_liked"]["liked"], m["not_liked"]["not_liked"]],
            ]
        )
        ax.imshow(counts, cmap="Blues")
        for (r, c), value in np.ndenumerate(counts):
            ax.text(
                c,
                r,
                f"{value:,}",
                ha="center",
                va="center",
                color="white" if value > counts.max() / 2 else "black",
            )
        star = "★ " if i == results["best_run"] else ""
        ax.set_title(
            f"{star}{run['model']} + {run['optimizer']}\nF1 {run['confusion']['f1']:.3f}",
            fontsize=9,
        )
        ax.set_xticks([0, 1], ["pred. liked", "pred. not"], fontsize=8)
        ax.set_yticks([0, 1], ["liked", "not liked"], fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=110)
    plt.close(fig)
    return ["confusion.png"]
