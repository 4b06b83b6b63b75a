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
