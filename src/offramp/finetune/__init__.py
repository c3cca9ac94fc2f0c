"""The learning loop's offline half: datasets of chat examples, tuning, evaluation."""
