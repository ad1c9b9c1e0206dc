"""The experiment registry (experiments/*.yaml), one recorded run, results/, the papermill
runner and its notebook jobs, the checks before a run. Built on training and below."""
