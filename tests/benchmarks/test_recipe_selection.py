"""The recipe-selection report is rendered from stored results, best recipe first."""

from benchmarks.recipe_selection import render, summarise


def rows(recipe, accuracies):
    return [dict(dataset=d, seed=0, recipe=recipe, validation_accuracy=a, supervised_epochs=e,
                 greedy_epochs=[5, 5], seconds=1.0)
            for (d, a), e in zip(accuracies.items(), (10, 20))]


def test_the_summary_ranks_recipes_by_mean_validation_accuracy_and_renders_them():
    results = rows("a", {"x": 0.5, "y": 0.9}) + rows("b", {"x": 0.8, "y": 0.8})
    summary = summarise(results)
    assert [s["recipe"] for s in summary] == ["b", "a"]
    assert summary[1]["mean"] == 0.7 and summary[1]["per_dataset"] == {"x": 0.5, "y": 0.9}
    text = render({"results": results, "summary": summary})
    table = [line for line in text.splitlines() if line.startswith("| b") or line.startswith("| a")]
    assert table == ["| b | 0.8000 | 0.8000 | 0.8000 | 15 | 1.0 |",
                     "| a | 0.7000 | 0.5000 | 0.9000 | 15 | 1.0 |"]


def test_stage_two_names_the_better_scoring_as_the_default():
    results = rows("r", {"x": 0.5, "y": 0.9})
    staged = (rows("r, scoring=loss (stage two)", {"x": 0.6, "y": 0.6})
              + rows("r, scoring=accuracy (stage two)", {"x": 0.7, "y": 0.9}))
    text = render({"results": results, "summary": summarise(results),
                   "refine": {"backend": "jax", "results": staged, "summary": summarise(staged)}})
    stage = text.split("## Stage two")[1]
    assert stage.index("scoring=accuracy") < stage.index("scoring=loss")
    assert 'The default is `scoring="accuracy"`' in stage


def test_stage_two_finds_the_stored_best_recipe_by_its_name():
    from benchmarks.recipe_selection import candidates

    recipe = dict(candidates())["activation=relu, corruption_level=0.1, learning_rate=0.003"]
    assert (recipe["activation"], recipe["corruption_level"], recipe["learning_rate"]) == (
        "relu", 0.1, 0.003)


def test_the_transformer_section_names_the_best_tied_recipe_not_pca():
    results = rows("r", {"x": 0.5, "y": 0.9})
    probed = (rows("TiedAutoencoderTransformer() (current default)", {"x": 0.4, "y": 0.4})
              + rows("activation=relu, corruption_level=0.3, learning_rate=0.003", {"x": 0.8, "y": 0.8})
              + rows("PCA, as many components as the code", {"x": 0.9, "y": 0.9}))
    text = render({"results": results, "summary": summarise(results),
                   "transformer": {"backend": "jax", "results": probed,
                                   "summary": summarise(probed)}})
    section = text.split("## `TiedAutoencoderTransformer`")[1]
    assert section.index("PCA") < section.index("activation=relu") < section.index("current default")
    assert "best tied recipe, activation=relu, corruption_level=0.3, learning_rate=0.003" in section


def test_the_transformer_and_cli_defaults_are_the_stored_choice():
    """The defaults in the code are the recipe the stored selection chose (no silent drift)."""
    import inspect
    import json
    from pathlib import Path

    from tiedae.cli.config import OPTIONS
    from tiedae.estimators import TiedAutoencoderTransformer

    stored = json.loads((Path(__file__).resolve().parents[2] / "docs" / "recipe_selection.json")
                        .read_text())["transformer"]["summary"]
    best = next(s["recipe"] for s in stored if s["recipe"].startswith("activation"))
    chosen = dict(item.split("=") for item in best.split(", "))
    defaults = {k: v.default for k, v in
                inspect.signature(TiedAutoencoderTransformer).parameters.items()}
    for name, value in chosen.items():
        assert str(defaults[name]) == value or float(defaults[name]) == float(value), name
        assert str(OPTIONS[name][1]) == value or float(OPTIONS[name][1]) == float(value), name
