"""`make bench`: the project's figures next to a baseline measured in the same run."""

#: (what, the project's figure, the baseline's figure, what the baseline is)
Row = tuple[str, float, float, str]
