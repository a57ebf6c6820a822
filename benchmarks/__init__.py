"""`make bench`: the project's figures next to a baseline measured in the same run."""
