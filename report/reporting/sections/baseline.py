"""Serves report/_06-baseline.qmd: the FashionMNIST baseline classifier, from the ``baseline`` run."""

from __future__ import annotations

import io

import pandas as pd
from PIL import Image
from IPython.display import Markdown

from experiments.charts.classes import confusion_matrix as confusion_chart
from experiments.charts.classes import per_class_accuracy as per_class_chart
from experiments.charts.i18n import SOURCE_LANGUAGE
from experiments.charts.image_grids import predictions_grid, predictions_grid_images
from experiments.charts.training import training_curves as training_chart
from reporting.display import Outputs, png_image
from reporting.i18n import _, chart_language, ngettext
from reporting.section import Section
from reporting.training_tables import final_metrics_frame, percent
from reporting.store import Store, StoredRun

SECTION = Section("baseline")


def status() -> Markdown:
    """Which run the baseline results come from, or the command that produces it."""
    return SECTION.status()


@SECTION.output
def sample_images(store: Store, run: StoredRun) -> Outputs:
    """The notebook's sample grid: a few training images of each class (the run's PNG)."""
    return Outputs(
        png_image(
            store.load_bytes(run, "sample_images.png"),
            "baseline-samples",
            _("Training images, a few per class"),
            caption=_("Training images, a few per class.") + " " + SECTION.source_line([run]),
        ),
    )


@SECTION.output
def summary(store: Store, run: StoredRun) -> Markdown:
    """Final accuracies, losses and training time."""
    return SECTION.table(final_metrics_frame(run), _("Baseline: final metrics"), [run], "baseline-summary")


@SECTION.output
def training_curves(store: Store, run: StoredRun) -> Outputs:
    """Loss and accuracy per epoch, train and test."""
    history = store.load_csv(run, "history.csv")
    chart = training_chart(history, language=chart_language())
    return SECTION.chart(chart, "baseline-curves", _("Baseline: training curves"), [run])


def per_class_frame(table: pd.DataFrame) -> pd.DataFrame:
    """per_class_accuracy.csv formatted for reading, plus the mean over classes."""
    frame = pd.DataFrame(
        {
            "class": table["class_name"],
            "correct / total": [f"{int(c)}/{int(t)}" for c, t in zip(table["correct"], table["total"])],
            "accuracy": [percent(a) for a in table["accuracy"]],
        }
    )
    label = _("mean over classes")
    mean = pd.DataFrame(
        {"class": [f"*{label}*"], "correct / total": [""], "accuracy": [percent(table["accuracy"].mean())]}
    )
    headers = {"class": _("class"), "correct / total": _("correct / total"), "accuracy": _("accuracy")}
    return pd.concat([frame, mean], ignore_index=True).rename(columns=headers)


def per_class_sentence(table: pd.DataFrame) -> str:
    """Which class is recognised best and which worst, from the table."""
    best = table.loc[table["accuracy"].idxmax()]
    worst = table.loc[table["accuracy"].idxmin()]
    if best["accuracy"] == worst["accuracy"]:
        return _("Every class is recognised equally well: {accuracy}.").format(accuracy=percent(best["accuracy"]))
    return _("The best-recognised class is *{best}* ({best_accuracy}), the hardest *{worst}* ({worst_accuracy}).").format(
        best=best["class_name"],
        best_accuracy=percent(best["accuracy"]),
        worst=worst["class_name"],
        worst_accuracy=percent(worst["accuracy"]),
    )


@SECTION.output
def per_class(store: Store, run: StoredRun) -> Outputs:
    """Test accuracy per class: chart, table and the best/worst class."""
    table = store.load_csv(run, "per_class_accuracy.csv")
    return Outputs(
        *SECTION.chart(
            per_class_chart(table, language=chart_language()), "baseline-per-class", _("Baseline: accuracy per class"), [run]
        ),
        Markdown(per_class_sentence(table) + "\n"),
        SECTION.table(per_class_frame(table), _("Baseline: test accuracy per class"), [run], "baseline-per-class"),
    )


def confusion_sentence(matrix: pd.DataFrame) -> str:
    """The most frequent confusion (true class predicted as another), from the matrix."""
    off = matrix.copy()
    for name in off.index:
        off.loc[name, name] = 0
    true, predicted = off.stack().idxmax()
    count = int(off.loc[true, predicted])
    if count == 0:
        return _("No test image was misclassified.")
    share = count / int(matrix.loc[true].sum())
    return ngettext(
        "The most frequent mistake: *{true}* predicted as *{predicted}*, {count} time ({share} of the {true} test images).",
        "The most frequent mistake: *{true}* predicted as *{predicted}*, {count} times ({share} of the {true} test images).",
        count,
    ).format(true=true, predicted=predicted, count=count, share=percent(share, 1))


@SECTION.output
def confusion(store: Store, run: StoredRun) -> Outputs:
    """The confusion matrix (rows true, columns predicted) and its largest off-diagonal cell."""
    matrix = store.load_csv(run, "confusion_matrix.csv", index_col=0)
    return Outputs(
        *SECTION.chart(
            confusion_chart(matrix, language=chart_language()), "baseline-confusion", _("Baseline: confusion matrix"), [run]
        ),
        Markdown(confusion_sentence(matrix) + "\n"),
    )


@SECTION.output
def sample_predictions(store: Store, run: StoredRun) -> Outputs:
    """Test images with their true and predicted class and the model's confidence."""
    table = store.load_csv(run, "sample_predictions.csv")
    no = _("no")
    frame = pd.DataFrame(
        {
            "#": table["index"].astype(str),
            _("true"): table["true_name"],
            _("predicted"): table["predicted_name"],
            _("confidence"): [f"{c:.3f}" for c in table["confidence"]],
            _("correct"): [_("yes") if t == p else f"**{no}**" for t, p in zip(table["true_label"], table["predicted_label"])],
        }
    )
    right = int((table["true_label"] == table["predicted_label"]).sum())
    correct = ngettext(
        "{right} of these {n} test image is classified correctly.",
        "{right} of these {n} test images are classified correctly.",
        len(table),
    ).format(right=right, n=len(table))
    return Outputs(
        png_image(
            predictions_png(store.load_bytes(run, "sample_predictions.png"), table),
            "baseline-predictions",
            _("Sample test predictions"),
            caption=correct + " " + SECTION.source_line([run]),
        ),
        SECTION.table(frame, _("Baseline: sample test predictions with confidence"), [run], "baseline-predictions"),
    )


def predictions_png(logged: bytes, table: pd.DataFrame) -> bytes:
    """The run's prediction grid (``sample_predictions.png``), its captions in the edition's language.

    The run draws it in English ("true:", "pred:"); another edition redraws it from the same
    images, cut back out of the logged grid, and the rows of ``sample_predictions.csv``.
    """
    language = chart_language()
    if language == SOURCE_LANGUAGE:
        return logged
    images = predictions_grid_images(Image.open(io.BytesIO(logged)), len(table))
    names = dict(zip(table["true_label"], table["true_name"])) | dict(zip(table["predicted_label"], table["predicted_name"]))
    grid = predictions_grid(
        images, table["true_label"].to_numpy(), table["predicted_label"].to_numpy(), table["confidence"].to_numpy(),
        [names.get(label, "") for label in range(max(names) + 1)], language=language,
    )  # fmt: skip
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    return buffer.getvalue()
