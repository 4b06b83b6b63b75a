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
