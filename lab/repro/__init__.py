"""`lab repro`: named reproducers of real, public Sentinel failures, each run on a fresh lab per build with a
verdict (reproduced, not reproduced, not applicable) and its evidence. lab.repro.catalogue lists them."""
